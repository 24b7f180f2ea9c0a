// Package slack sets how late the kernel may fire the agent's timers.
//
// The Go runtime's monitor thread polls every 20 µs, for a millisecond
// or more, each time the agent goes from idle to work, which it does
// several times a second in an exec storm. With the kernel's default
// timer slack (50 µs) each of those polls is a wakeup of its own, and on
// a virtual machine a wakeup costs more than most of the work around it.
// With a millisecond of slack the kernel folds them, and the agent's
// other timers, into far fewer wakeups; nothing the agent does needs its
// timers finer than that.
//
// A thread starts with the slack of the thread that started it, and the
// runtime starts its monitor before any of the program's code runs, so
// the only way to give every thread of the agent a slack is for the
// process to start with it: Apply sets the calling thread's and executes
// the agent again, in the same process.
package slack
