// Package fswatch holds the agent's file sensor: it watches the folders
// attackers change to persist or escalate (cron, sudoers, passwd and
// shadow, ld.so.preload, systemd units, profile scripts, SSH keys, shell
// rc files, /tmp and /dev/shm) and reports each creation, change,
// deletion, rename and attribute change as an [ecs.Event] of category
// file.
//
// Watched paths are written as absolute paths; a path ending in "/..."
// is watched recursively, and folders created below it are watched as
// they appear. Paths may hold glob patterns ("/home/*/.ssh/..."), which
// are expanded when the sensor starts and again while paths are missing.
//
// The events follow ECS: event.type is creation, change or deletion, and
// event.action says what happened: created, updated, deleted, renamed
// (event.type change, file.path is the old name; the new name arrives
// as its own creation) or attributes_modified. file.mode carries the
// setuid, setgid and sticky bits. Regular files that are created or
// written are hashed with SHA-256 up to a size cap by a bounded worker,
// off the path that reads the kernel's events; a path written many times
// while it waits for the worker is hashed and reported once.
//
// On Linux with CAP_SYS_ADMIN the folders are watched with fanotify
// instead of inotify where the kernel allows (mode fsnotify+fanotify),
// and each event names the process that made the change (process.pid,
// entity_id, executable, name, command_line; event.module fanotify).
// The fanotify records are decoded by a pure function (parseFanotify).
package fswatch
