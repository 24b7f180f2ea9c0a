// Package sensor holds the agent's process sensor: it watches processes
// start and end and reports each as an [ecs.Event] with the process, its
// parent and its known ancestry.
//
// On Linux, run as root (or with CAP_NET_ADMIN), it listens to the kernel's
// netlink process connector and reads /proc for each exec as soon as the
// event arrives, on a thread of its own raised to SCHED_FIFO when allowed,
// so even processes that exit within a millisecond are seen with their
// executable and command line. Elsewhere, or when the connector cannot be
// opened, it polls the process table with gopsutil, which misses processes
// that live shorter than the poll interval.
//
// The parsing of /proc files and of connector messages is done by pure
// functions over bytes; the OS layer only reads.
package sensor
