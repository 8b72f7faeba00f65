// Security: a flood of concurrent streams cannot pile up work. 40 streaming
// calls at once (4 connections x 10 streams) against --max-concurrent 2
// --queue 2 with every generation held in the backend: exactly 2 run and 2
// wait, the other 36 are refused at once with RESOURCE_EXHAUSTED ("server
// busy"), the cheap RPCs are still answered meanwhile, and once the held work
// is released the 4 admitted streams finish OK and the server serves again.
#include <atomic>
#include <map>

#include "gtest/gtest.h"
#include "tests/faults/fault_util.h"
#include "tests/services/test_server.h"
#include "tests/services/fake_backend.h"

namespace bitparity::faults {
namespace {

namespace v1 = ::bitnet::v1;

TEST(ConcurrentStreamsTest, FloodIsBoundedByTheAdmissionGate) {
  auto backend = std::make_shared<testing::FakeBackend>();
  backend->Hold();
  ServerOptions so;
  so.limits.max_concurrent = 2;
  so.limits.max_queue = 2;
  auto server = testing::LoopbackServer::Start(so, backend);
  ASSERT_NE(server, nullptr);
  constexpr int kConnections = 4, kStreamsEach = 10;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < kConnections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("bp-connection", c);  // distinct arguments: distinct connections
    channels.push_back(grpc::CreateCustomChannel(server->address(),
                                                 grpc::InsecureChannelCredentials(), args));
  }
  std::mutex mu;
  std::map<int, int> by_code;
  std::vector<std::string> busy_messages;
  std::atomic<int> finished{0};
  std::vector<std::thread> streams;
  for (int c = 0; c < kConnections; ++c) {
    for (int s = 0; s < kStreamsEach; ++s) {
      streams.emplace_back([&, c] {
        auto stub = v1::Engine::NewStub(channels[c]);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
        v1::GenerateRequest req;
        req.mutable_input()->set_text("abc");
        req.set_max_new_tokens(4);
        auto reader = stub->GenerateStream(&ctx, req);
        v1::GenerateStreamResponse m;
        while (reader->Read(&m)) {
        }
        grpc::Status st = reader->Finish();
        std::lock_guard<std::mutex> lock(mu);
        ++by_code[st.error_code()];
        if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) busy_messages.push_back(st.error_message());
        ++finished;
      });
    }
  }
  // The refusals come while the admitted four are still held.
  AdmissionGate& gate = server->server().service().gate();
  for (int i = 0; i < 12000 && finished.load() < 36; ++i) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_EQ(finished.load(), 36) << "refusals did not all come back while 4 were held";
  EXPECT_EQ(gate.running(), 2);
  EXPECT_EQ(gate.waiting(), 2);
  EXPECT_EQ(backend->max_running_seen(), 2);
  {
    // A cheap RPC still gets a thread and an answer.
    auto stub = server->Stub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::GetModelInfoResponse info;
    grpc::Status st = stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  backend->Release();
  for (auto& t : streams) t.join();
  EXPECT_EQ(by_code[grpc::StatusCode::OK], 4);
  EXPECT_EQ(by_code[grpc::StatusCode::RESOURCE_EXHAUSTED], 36);
  ASSERT_FALSE(busy_messages.empty());
  EXPECT_NE(busy_messages[0].find("server busy"), std::string::npos) << busy_messages[0];
  EXPECT_EQ(backend->max_running_seen(), 2);
  EXPECT_EQ(gate.running(), 0);
  auto stub = server->Stub();
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  v1::GenerateRequest req;
  req.mutable_input()->set_text("abc");
  req.set_max_new_tokens(4);
  EXPECT_TRUE(stub->Generate(&ctx, req, &resp).ok());
}

}  // namespace
}  // namespace bitparity::faults
