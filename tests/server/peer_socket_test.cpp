// PeerSocket finds an accepted connection's socket by its addresses and tells a client that is
// still there (idle, or sending more) from one that closed or reset.
#include "server/peer_socket.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace vortex::server {
namespace {

struct Loopback {
  int listener = -1, client = -1, accepted = -1;
  int server_port = 0, client_port = 0;

  Loopback() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(listener, 4), 0);
    socklen_t len = sizeof a;
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    server_port = ntohs(a.sin_port);
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    accepted = accept(listener, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
    len = sizeof a;
    getsockname(client, reinterpret_cast<sockaddr*>(&a), &len);
    client_port = ntohs(a.sin_port);
  }
  ~Loopback() {
    for (int fd : {listener, client, accepted})
      if (fd >= 0) close(fd);
  }
};

TEST(PeerSocket, FindsTheAcceptedSocketByItsAddresses) {
  Loopback l;
  std::optional<PeerSocket> p =
      PeerSocket::find("127.0.0.1", l.server_port, "127.0.0.1", l.client_port);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->fd(), l.accepted);  // not the client's end, whose addresses are the reverse
  EXPECT_FALSE(PeerSocket::find("127.0.0.1", l.server_port, "127.0.0.1", l.client_port + 1));
  EXPECT_FALSE(PeerSocket::find("127.0.0.2", l.server_port, "127.0.0.1", l.client_port));
  EXPECT_FALSE(PeerSocket::find("127.0.0.1", -1, "127.0.0.1", l.client_port));
}

TEST(PeerSocket, TellsAClientThatIsThereFromOneThatLeft) {
  Loopback l;
  std::optional<PeerSocket> p =
      PeerSocket::find("127.0.0.1", l.server_port, "127.0.0.1", l.client_port);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->hung_up());  // connected and idle
  ASSERT_EQ(write(l.client, "GET", 3), 3);
  EXPECT_FALSE(p->hung_up());  // sent more: still there, and nothing was consumed
  char buf[3];
  EXPECT_EQ(recv(l.accepted, buf, 3, 0), 3);
  close(l.client);
  l.client = -1;
  EXPECT_TRUE(p->hung_up());
}

}  // namespace
}  // namespace vortex::server
