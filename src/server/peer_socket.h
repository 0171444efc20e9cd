// The socket of one HTTP connection, found by its addresses, so that a handler computing a
// non-streaming answer notices when its client hangs up (cpp-httplib 0.11 gives a handler the
// connection's addresses but not its socket). A streaming answer needs none of this: its first
// failed write says the client is gone.
#pragma once

#include <optional>
#include <string>

namespace vortex::server {

class PeerSocket {
 public:
  // The open TCP socket of this process whose local and remote addresses are these (numeric
  // hosts, as httplib::Request holds them); nullopt when none matches.
  static std::optional<PeerSocket> find(const std::string& local_addr, int local_port,
                                        const std::string& remote_addr, int remote_port);

  // True once the client has closed its side or reset the connection; false while it is
  // connected, also when it has sent more bytes (a pipelined request). Never blocks or reads.
  bool hung_up() const;

  int fd() const { return fd_; }

 private:
  explicit PeerSocket(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace vortex::server
