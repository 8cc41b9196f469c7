#include "client_connection.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>

namespace dattn::server {
namespace {

// The address as cpp-httplib writes it: getnameinfo's numeric host and the port.
bool numeric_address(const sockaddr_storage& addr, socklen_t len, std::string& host, int& port) {
  char buffer[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, buffer, sizeof(buffer), nullptr, 0, NI_NUMERICHOST))
    return false;
  host = buffer;
  if (addr.ss_family == AF_INET)
    port = ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  else if (addr.ss_family == AF_INET6)
    port = ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  else
    return false;
  return true;
}

bool has_addresses(int fd, const std::string& local_addr, int local_port, const std::string& remote_addr,
                   int remote_port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  std::string host;
  int port = -1;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || !numeric_address(addr, len, host, port) ||
      port != remote_port || host != remote_addr)
    return false;
  len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || !numeric_address(addr, len, host, port))
    return false;
  return port == local_port && host == local_addr;
}

}  // namespace

std::optional<ClientConnection> ClientConnection::find(const std::string& local_addr, int local_port,
                                                       const std::string& remote_addr, int remote_port) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return std::nullopt;
  std::optional<ClientConnection> found;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    if (has_addresses(int(fd), local_addr, local_port, remote_addr, remote_port)) {
      found = ClientConnection(int(fd));
      break;
    }
  }
  closedir(dir);
  return found;
}

bool ClientConnection::closed_by_peer() const {
  pollfd p{.fd = fd_, .events = POLLRDHUP, .revents = 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace dattn::server
