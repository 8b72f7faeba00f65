// File: orchestrator/host_info.h
// Where a report was made (provenance): host name, OS, CPU model, core count.
#pragma once

#include "nlohmann/json.hpp"

namespace bitparity {
nlohmann::json HostInfo();
}  // namespace bitparity
