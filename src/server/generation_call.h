// One HTTP request's engine requests: submits its choices to the EngineLoop, hears their events
// through a queue (the loop's callbacks only enqueue; this thread waits), and cancels whatever
// is still running when the client goes away or the server gives up on it. Independent of HTTP,
// so answers and streams are tested against a real loop without a socket.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/api_request.h"

namespace vortex::server {

class GenerationCall {
 public:
  using Clock = std::chrono::steady_clock;
  // `deadline`, when set, aborts every choice still running then (finish_reason "abort").
  GenerationCall(EngineLoop& loop, ApiRequest request, std::optional<Clock::time_point> deadline);
  // Cancels every choice still running.
  ~GenerationCall();
  GenerationCall(const GenerationCall&) = delete;
  GenerationCall& operator=(const GenerationCall&) = delete;

  // Submits every choice. If one is refused (QueueFullError, or a vortex::Error naming a bad
  // field), cancels those already submitted and rethrows.
  void submit();

  // Waits for the next event, adds it to its choice's output and returns the choice's index
  // and the event. Only while !done().
  std::pair<int32_t, RequestEvent> next();
  // Waits up to `timeout` for an event; true when next() would return at once.
  bool wait_for_event(Clock::duration timeout);
  bool done() const { return finished_ == outputs_.size(); }

  // Cancels every choice still running (idempotent); each still ends with its kFinished event.
  void cancel();

  const ApiRequest& request() const { return request_; }
  const std::vector<ChoiceOutput>& outputs() const { return outputs_; }

 private:
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<int32_t, RequestEvent>> events;
  };
  EngineLoop& loop_;
  ApiRequest request_;
  std::optional<Clock::time_point> deadline_;
  std::shared_ptr<Queue> queue_;  // shared with the loop's callbacks, which may outlive this
  std::vector<int64_t> ids_;      // engine ids of the choices submitted
  std::vector<ChoiceOutput> outputs_;
  size_t finished_ = 0;
};

// Runs a non-streaming call to its end and returns the answer. `client_gone`, when given, is
// asked every kHangUpPoll: once it says the client hung up, the call is cancelled (its pages
// are free within a step) and this throws HttpError 499.
inline constexpr std::chrono::milliseconds kHangUpPoll{50};
Json run_to_answer(GenerationCall& call, ResponseFormatter& formatter,
                   const std::function<bool()>& client_gone = {});

// Streams a call: start(), each event's text, end(). `write` sends SSE text and returns false
// when the client is gone; then the call is cancelled and this returns false.
bool run_stream(GenerationCall& call, ResponseFormatter& formatter,
                const std::function<bool(const std::string&)>& write);

}  // namespace vortex::server
