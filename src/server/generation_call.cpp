#include "server/generation_call.h"

#include "server/error_response.h"

namespace vortex::server {

GenerationCall::GenerationCall(EngineLoop& loop, ApiRequest request,
                               std::optional<Clock::time_point> deadline)
    : loop_(loop),
      request_(std::move(request)),
      deadline_(deadline),
      queue_(std::make_shared<Queue>()),
      outputs_(request_.jobs.size()) {}

GenerationCall::~GenerationCall() {
  if (!done()) cancel();
}

void GenerationCall::submit() {
  try {
    for (const ChoiceJob& job : request_.jobs) {
      LoopRequest lr;
      lr.prompt = job.prompt;
      lr.params = job.params;
      lr.deadline = deadline_;
      // Runs on the engine thread: only enqueue. The queue is shared so that an event arriving
      // after this call is gone lands somewhere harmless.
      lr.on_event = [q = queue_, choice = job.index](RequestEvent&& e) {
        {
          std::lock_guard<std::mutex> lock(q->mu);
          q->events.emplace_back(choice, std::move(e));
        }
        q->cv.notify_one();
      };
      ids_.push_back(loop_.submit(std::move(lr)));
    }
  } catch (...) {
    cancel();
    // Choices never submitted will not hear from the loop: count them as finished so that
    // done() only waits for the submitted ones.
    finished_ += outputs_.size() - ids_.size();
    while (!done()) next();
    throw;
  }
}

std::pair<int32_t, RequestEvent> GenerationCall::next() {
  std::unique_lock<std::mutex> lock(queue_->mu);
  queue_->cv.wait(lock, [&] { return !queue_->events.empty(); });
  std::pair<int32_t, RequestEvent> item = std::move(queue_->events.front());
  queue_->events.pop_front();
  lock.unlock();
  ChoiceOutput& out = outputs_.at(static_cast<size_t>(item.first));
  out.add(item.second);
  if (item.second.kind == RequestEvent::Kind::kFinished) ++finished_;
  return item;
}

bool GenerationCall::wait_for_event(Clock::duration timeout) {
  std::unique_lock<std::mutex> lock(queue_->mu);
  return queue_->cv.wait_for(lock, timeout, [&] { return !queue_->events.empty(); });
}

void GenerationCall::cancel() {
  for (int64_t id : ids_) loop_.cancel(id);
}

namespace {

// The engine failed under a choice (a device error): the request fails as a whole, 500. Or the
// request became invalid between its checks and its admission (the flow it names was removed
// meanwhile): 400, as if the checks had caught it.
std::optional<HttpError> engine_failure(const ChoiceOutput& out) {
  if (out.abort_reason == "invalid_request") {
    const bool flow = out.error.find("no flow named") != std::string::npos;
    return HttpError(400, out.error, flow ? "flow" : "",
                     flow ? "flow_not_found" : "invalid_request_error");
  }
  if (out.abort_reason != "error") return std::nullopt;
  return HttpError(500, str_cat("the engine failed: ", out.error), "", "engine_error");
}

}  // namespace

Json run_to_answer(GenerationCall& call, ResponseFormatter& formatter,
                   const std::function<bool()>& client_gone) {
  // Tokens keep coming while the answer is computed: the client is asked on a clock, not when
  // the events pause.
  auto next_check = GenerationCall::Clock::now() + kHangUpPoll;
  while (!call.done()) {
    if (client_gone) {
      const bool event = call.wait_for_event(next_check - GenerationCall::Clock::now());
      if (GenerationCall::Clock::now() >= next_check) {
        if (client_gone()) {
          call.cancel();
          while (!call.done()) call.next();  // every choice ends within a step: pages are free
          throw HttpError(499, "the client closed the connection before the answer was ready", "",
                          "client_closed");
        }
        next_check = GenerationCall::Clock::now() + kHangUpPoll;
      }
      if (!event) continue;
    }
    call.next();
  }
  for (const ChoiceOutput& out : call.outputs()) {
    if (std::optional<HttpError> e = engine_failure(out)) throw *e;
  }
  return formatter.response(call.outputs());
}

bool run_stream(GenerationCall& call, ResponseFormatter& formatter,
                const std::function<bool(const std::string&)>& write) {
  auto send = [&](const std::string& text) { return text.empty() || write(text); };
  bool ok = send(formatter.start());
  while (ok && !call.done()) {
    auto [choice, event] = call.next();
    const ChoiceOutput& out = call.outputs().at(static_cast<size_t>(choice));
    if (event.kind == RequestEvent::Kind::kToken) {
      ok = send(formatter.token(choice, out, event));
    } else if (std::optional<HttpError> e = engine_failure(out)) {
      ok = send(sse_data(error_json(*e)));  // headers are out: the error travels as an event
    } else {
      ok = send(formatter.finish(choice, out));
    }
  }
  if (ok) ok = send(formatter.end(call.outputs()));
  if (!ok) {
    call.cancel();
    while (!call.done()) call.next();  // every choice ends within a step: pages are free
  }
  return ok;
}

}  // namespace vortex::server
