# Finds the user's bitnet.cpp build under BITNET_CPP_DIR for bitnet-cpp-worker,
# checks its llama.h API, and writes bitnet_cpp/bitnet_cpp_build_info.h
# (commit, build flags, API renames). Sets:
#   BP_BITNET_CPP_INCLUDE_DIRS  BP_BITNET_CPP_LIBRARIES  BP_BITNET_CPP_LIBRARY_DIRS
# Fails configuration, naming what is missing, when the checkout is unusable.
get_filename_component(_dir "${BITNET_CPP_DIR}" ABSOLUTE)
if(NOT IS_DIRECTORY "${_dir}")
  message(FATAL_ERROR "BITNET_CPP_DIR='${BITNET_CPP_DIR}' is not a folder")
endif()

# Headers: BitNet vendors llama.cpp under 3rdparty/; a plain llama.cpp has them at the top.
find_path(BP_LLAMA_INCLUDE_DIR llama.h
  PATHS ${_dir}/3rdparty/llama.cpp/include ${_dir}/include NO_DEFAULT_PATH)
find_path(BP_GGML_INCLUDE_DIR ggml.h
  PATHS ${_dir}/3rdparty/llama.cpp/ggml/include ${_dir}/ggml/include ${_dir}/include NO_DEFAULT_PATH)
# Libraries: wherever the checkout's CMake build put them.
set(_libdirs ${_dir}/build/3rdparty/llama.cpp/src ${_dir}/build/3rdparty/llama.cpp/ggml/src
             ${_dir}/build/src ${_dir}/build/ggml/src ${_dir}/build/bin ${_dir}/build/lib ${_dir}/build)
find_library(BP_LLAMA_LIBRARY NAMES llama PATHS ${_libdirs} NO_DEFAULT_PATH)
find_library(BP_GGML_LIBRARY NAMES ggml PATHS ${_libdirs} NO_DEFAULT_PATH)
# Newer llama.cpp splits ggml; use the parts when they exist.
find_library(BP_GGML_BASE_LIBRARY NAMES ggml-base PATHS ${_libdirs} NO_DEFAULT_PATH)
find_library(BP_GGML_CPU_LIBRARY NAMES ggml-cpu PATHS ${_libdirs} NO_DEFAULT_PATH)

set(_missing "")
foreach(v BP_LLAMA_INCLUDE_DIR BP_GGML_INCLUDE_DIR BP_LLAMA_LIBRARY BP_GGML_LIBRARY)
  if(NOT ${v})
    list(APPEND _missing ${v})
  endif()
endforeach()
if(_missing)
  message(FATAL_ERROR
    "BITNET_CPP_DIR='${_dir}' is not a built bitnet.cpp checkout; missing:\n"
    "  BP_LLAMA_INCLUDE_DIR  llama.h in 3rdparty/llama.cpp/include or include  -> ${BP_LLAMA_INCLUDE_DIR}\n"
    "  BP_GGML_INCLUDE_DIR   ggml.h in 3rdparty/llama.cpp/ggml/include, ggml/include or include -> ${BP_GGML_INCLUDE_DIR}\n"
    "  BP_LLAMA_LIBRARY      libllama under build/ (build/3rdparty/llama.cpp/src, build/bin, ...) -> ${BP_LLAMA_LIBRARY}\n"
    "  BP_GGML_LIBRARY       libggml under build/ -> ${BP_GGML_LIBRARY}\n"
    "Build bitnet.cpp first (cmake -B build ... && cmake --build build --target llama), "
    "or set the BP_* cache variables above by hand.")
endif()

set(BP_BITNET_CPP_INCLUDE_DIRS ${BP_LLAMA_INCLUDE_DIR} ${BP_GGML_INCLUDE_DIR})
set(BP_BITNET_CPP_LIBRARIES ${BP_LLAMA_LIBRARY} ${BP_GGML_LIBRARY})
foreach(l BP_GGML_BASE_LIBRARY BP_GGML_CPU_LIBRARY)
  if(${l})
    list(APPEND BP_BITNET_CPP_LIBRARIES ${${l}})
  endif()
endforeach()
# Static builds also need what ggml was built with.
if(BP_LLAMA_LIBRARY MATCHES "\\.a$")
  find_package(OpenMP)
  if(OpenMP_CXX_FOUND)
    list(APPEND BP_BITNET_CPP_LIBRARIES OpenMP::OpenMP_CXX)
  endif()
  list(APPEND BP_BITNET_CPP_LIBRARIES Threads::Threads m dl)
endif()
set(BP_BITNET_CPP_LIBRARY_DIRS "")
foreach(l ${BP_LLAMA_LIBRARY} ${BP_GGML_LIBRARY} ${BP_GGML_BASE_LIBRARY} ${BP_GGML_CPU_LIBRARY})
  if(l)
    get_filename_component(d "${l}" DIRECTORY)
    list(APPEND BP_BITNET_CPP_LIBRARY_DIRS ${d})
  endif()
endforeach()
list(REMOVE_DUPLICATES BP_BITNET_CPP_LIBRARY_DIRS)

# The llama.h API. The worker is written against BitNet 01eb415's; newer
# llama.cpp renamed a few functions without changing their signatures, and
# those renames are mapped. Anything else missing is a configure error.
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${BP_BITNET_CPP_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES ${BP_BITNET_CPP_LIBRARIES})
set(CMAKE_REQUIRED_QUIET ON)
set(_api_defines "")
set(_api_names "")
# bp_llama_pick(<macro> <01eb415 name> <newer name>)
macro(bp_llama_pick macro old new)
  check_symbol_exists(${old} llama.h BP_HAVE_${old})
  if(BP_HAVE_${old})
    string(APPEND _api_defines "#define ${macro} ${old}\n")
    list(APPEND _api_names ${old})
  else()
    check_symbol_exists(${new} llama.h BP_HAVE_${new})
    if(BP_HAVE_${new})
      string(APPEND _api_defines "#define ${macro} ${new}\n")
      list(APPEND _api_names ${new})
      message(STATUS "cpp_ref_adapter: this bitnet.cpp has ${new} in place of ${old}")
    else()
      message(FATAL_ERROR "BITNET_CPP_DIR='${_dir}': llama.h/libllama has neither ${old} (BitNet "
                          "01eb415) nor ${new}; see CMakeFiles/CMakeConfigureLog.yaml or CMakeError.log")
    endif()
  endif()
endmacro()
bp_llama_pick(BP_LLAMA_LOAD_MODEL llama_load_model_from_file llama_model_load_from_file)
bp_llama_pick(BP_LLAMA_NEW_CONTEXT llama_new_context_with_model llama_init_from_model)
bp_llama_pick(BP_LLAMA_FREE_MODEL llama_free_model llama_model_free)
bp_llama_pick(BP_LLAMA_KV_CLEAR llama_kv_cache_clear llama_kv_self_clear)
foreach(fn llama_tokenize llama_token_to_piece llama_batch_init llama_decode llama_get_logits_ith
           llama_n_vocab llama_sampler_chain_init llama_sampler_init_penalties
           llama_model_meta_val_str llama_print_system_info gguf_init_from_file)
  check_symbol_exists(${fn} llama.h BP_HAVE_${fn})
  if(NOT BP_HAVE_${fn})
    message(FATAL_ERROR "BITNET_CPP_DIR='${_dir}': ${fn} is missing from its llama.h/libllama. "
                        "bitnet-cpp-worker supports the llama.h API of BitNet commit 01eb415.")
  endif()
endforeach()
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)
unset(CMAKE_REQUIRED_QUIET)

# Provenance for GetModelInfo.
function(bp_git_head dir out)
  execute_process(COMMAND git -C "${dir}" rev-parse HEAD RESULT_VARIABLE rc
                  OUTPUT_VARIABLE head ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  # A folder inside some other repository must not report that repository's HEAD.
  execute_process(COMMAND git -C "${dir}" rev-parse --show-toplevel RESULT_VARIABLE rc2
                  OUTPUT_VARIABLE top ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  get_filename_component(real_dir "${dir}" REALPATH)
  if(rc EQUAL 0 AND rc2 EQUAL 0 AND top STREQUAL real_dir)
    set(${out} "${head}" PARENT_SCOPE)
  else()
    set(${out} "unknown (not a git checkout)" PARENT_SCOPE)
  endif()
endfunction()
bp_git_head("${_dir}" BP_BITNET_CPP_COMMIT)
if(IS_DIRECTORY "${_dir}/3rdparty/llama.cpp")
  bp_git_head("${_dir}/3rdparty/llama.cpp" BP_BITNET_CPP_LLAMA_COMMIT)
else()
  set(BP_BITNET_CPP_LLAMA_COMMIT "n/a (no 3rdparty/llama.cpp)")
endif()
set(BP_BITNET_CPP_BUILD_INFO_COMMIT "unknown (no build-info.cpp)")
foreach(f ${_dir}/3rdparty/llama.cpp/common/build-info.cpp ${_dir}/common/build-info.cpp)
  if(EXISTS ${f})
    file(STRINGS ${f} _line REGEX "LLAMA_COMMIT")
    if(_line MATCHES "\"([^\"]*)\"")
      set(BP_BITNET_CPP_BUILD_INFO_COMMIT "${CMAKE_MATCH_1} (from ${f})")
    endif()
    break()
  endif()
endforeach()

set(BP_BITNET_CPP_CMAKE_FLAGS "unknown (build/CMakeCache.txt not readable)")
set(BP_BITNET_CPP_COMPILER "unknown")
set(BP_BITNET_CPP_BUILD_TYPE "unknown")
if(EXISTS ${_dir}/build/CMakeCache.txt)
  file(STRINGS ${_dir}/build/CMakeCache.txt _cache
       REGEX "^(GGML_[A-Z0-9_]+|LLAMA_[A-Z0-9_]+|BITNET_[A-Z0-9_]+|BUILD_SHARED_LIBS|CMAKE_BUILD_TYPE|CMAKE_C_COMPILER|CMAKE_CXX_COMPILER|CMAKE_C_FLAGS|CMAKE_CXX_FLAGS):[A-Z]+=")
  set(_flags "")
  foreach(l ${_cache})
    string(REGEX REPLACE "^([^:]+):[A-Z]+=(.*)$" "\\1=\\2" kv "${l}")
    list(APPEND _flags "${kv}")
    if(l MATCHES "^CMAKE_BUILD_TYPE:[A-Z]+=(.*)$")
      set(BP_BITNET_CPP_BUILD_TYPE "${CMAKE_MATCH_1}")
    endif()
    if(l MATCHES "^CMAKE_CXX_COMPILER:[A-Z]+=(.*)$")
      set(_cxx "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  # Options of back ends and tooling this CPU build does not use only add noise.
  list(FILTER _flags EXCLUDE REGEX
       "^(GGML|LLAMA)_[A-Z0-9_]*(CUDA|VULKAN|SYCL|METAL|HIP|KOMPUTE|MUSA|INSTALL_DIR|CCACHE|WARNINGS|GPROF|LASX|LSX|ACCELERATE|SANITIZE|SSL|CURL|RPC)")
  list(JOIN _flags " " BP_BITNET_CPP_CMAKE_FLAGS)
  if(_cxx)
    execute_process(COMMAND ${_cxx} --version OUTPUT_VARIABLE _ver ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0)
      string(REGEX REPLACE "\n.*" "" _ver "${_ver}")
      set(BP_BITNET_CPP_COMPILER "${_ver}")
    else()
      set(BP_BITNET_CPP_COMPILER "${_cxx}")
    endif()
  endif()
endif()
set(BP_BITNET_CPP_DIR_ABS "${_dir}")
list(JOIN _api_names " " BP_BITNET_CPP_API)
set(BP_BITNET_CPP_API_DEFINES "${_api_defines}")
foreach(v BP_BITNET_CPP_COMMIT BP_BITNET_CPP_LLAMA_COMMIT BP_BITNET_CPP_BUILD_INFO_COMMIT
          BP_BITNET_CPP_CMAKE_FLAGS BP_BITNET_CPP_COMPILER BP_BITNET_CPP_BUILD_TYPE
          BP_BITNET_CPP_DIR_ABS BP_BITNET_CPP_API)
  string(REPLACE "\\" "\\\\" ${v} "${${v}}")
  string(REPLACE "\"" "\\\"" ${v} "${${v}}")
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/bitnet_cpp_build_info.h.in
               ${CMAKE_CURRENT_BINARY_DIR}/bitnet_cpp/bitnet_cpp_build_info.h @ONLY)
message(STATUS "cpp_ref_adapter: bitnet-cpp-worker over ${BP_LLAMA_LIBRARY} "
               "(commit: ${BP_BITNET_CPP_COMMIT}; build-info: ${BP_BITNET_CPP_BUILD_INFO_COMMIT})")
