// File: tests/orchestrator/native_loopback.h
//
// The real server the orchestrator's in-process tests talk to: the native
// engine on the tiny-b158 fixture behind a loopback gRPC server
// (tests/services/test_server.h). Loading is the slow part, so a suite starts
// one in SetUpTestSuite and shares it. nullptr, with a test failure, when the
// model does not load; call it only when the fixtures are there.
#pragma once

#include <memory>

#include "gtest/gtest.h"
#include "services/native/native_backend.h"
#include "tests/common/fixtures.h"
#include "tests/services/test_server.h"

namespace bitparity::testing {

inline std::unique_ptr<LoopbackServer> StartNativeLoopback() {
  NativeBackendOptions o;
  o.model_path = FixturePath("models/tiny-b158.gguf");
  o.threads = 1;
  auto backend = NativeBackend::Load(o);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return nullptr;
  return LoopbackServer::Start({}, std::shared_ptr<EngineBackend>(std::move(*backend)));
}

}  // namespace bitparity::testing
