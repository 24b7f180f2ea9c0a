// Package bench holds the benchmarks of the agent's sensors that run real
// processes, files and sockets: an exec storm seen by the process sensor
// against a 100 ms polling baseline, the sensors' idle cost, and the file
// sensor's latency. Run them with `make bench`; figures are in
// docs/benchmarks.md.
package bench
