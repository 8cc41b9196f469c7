// The TCP connection of a request being answered, found from the addresses cpp-httplib gives the handler
// (it does not hand handlers its socket). A non-streaming response writes nothing until the completion is
// done, so this is how its handler learns that the client left: the peer's FIN shows on the socket.
#pragma once
#include <optional>
#include <string>

namespace dattn::server {

class ClientConnection {
 public:
  // The connected socket of this process whose local and peer addresses are these (numeric host, port), or
  // none when no such socket is open (then a departure cannot be seen).
  static std::optional<ClientConnection> find(const std::string& local_addr, int local_port,
                                              const std::string& remote_addr, int remote_port);
  // The client closed its end (or the connection broke). Does not block or read.
  bool closed_by_peer() const;

 private:
  explicit ClientConnection(int fd) : fd_(fd) {}
  int fd_;  // owned by cpp-httplib's connection thread, which is the caller's thread: valid while it runs
};

}  // namespace dattn::server
