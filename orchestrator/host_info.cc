#include "orchestrator/host_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace bitparity {

nlohmann::json HostInfo() {
  nlohmann::json j;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  j["hostname"] = host;
  struct utsname u;
  if (uname(&u) == 0) j["os"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  j["cpu"] = "";
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) j["cpu"] = line.substr(colon + 2);
      break;
    }
  }
  j["n_cpus"] = static_cast<int>(std::thread::hardware_concurrency());
  return j;
}

}  // namespace bitparity
