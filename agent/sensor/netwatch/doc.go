// Package netwatch holds the agent's network sensor: it reports each new
// TCP or UDP connection with the process that owns it (event.type
// connection, network.direction egress or ingress) and each new listening
// socket (event.type start), once per socket, not once per look.
//
// On Linux, as root, TCP connections and listeners come from an eBPF
// program at the sock:inet_sock_set_state tracepoint through a ring
// buffer, and UDP flows from programs at the sock:sock_send_length
// tracepoint (a connected socket's first datagram) and the cgroup
// sendmsg hooks (an unconnected socket's first datagram to each peer);
// the socket table is dumped only every reconcile interval, for bound UDP
// sockets and for records the ring lost; both carry the socket cookie,
// which keeps each socket reported once. Where eBPF cannot load, it dumps
// the kernel's socket table through netlink sock_diag
// (inet_diag requests for TCP and UDP over IPv4 and IPv6) every interval
// and compares it with the previous dump by socket cookie, which the
// kernel keeps unique per socket, including after a TCP socket enters
// TIME_WAIT. The owning process is found by the socket's inode in
// /proc/*/fd, scanned only when a socket unknown to the cache appears.
// Elsewhere it polls gopsutil's connection table.
//
// What a dump cannot see: a connection opened and fully closed between
// two looks (a TCP connection closed by its peer, or a UDP exchange that
// never connects its socket), and the owner of a socket that was closed
// before its owner was looked up (reported without a process).
//
// The parsing of netlink messages and of /proc links is done by pure
// functions over bytes; the OS layer only reads.
package netwatch
