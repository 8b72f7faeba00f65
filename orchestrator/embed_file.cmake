# cmake -DIN=file -DOUT=file.cc -DSYMBOL=name -P embed_file.cmake
# Writes `extern const char SYMBOL[]; extern const size_t SYMBOL_size;` with IN's bytes.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "// Generated from ${IN} by embed_file.cmake. Do not edit.\n#include <cstddef>\nnamespace bitparity {\nextern const unsigned char ${SYMBOL}[];\nextern const size_t ${SYMBOL}_size;\nconst unsigned char ${SYMBOL}[] = {\n${body}0x00};\nconst size_t ${SYMBOL}_size = ${bytes};\n}  // namespace bitparity\n")
