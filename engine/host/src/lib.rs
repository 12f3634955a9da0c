//! What Berth asks of the host, answered in one place: whether a process lives, whether it
//! is still the process that started at a given time (not a reused pid), how much a
//! directory tree takes on disk, which names may become a path component, and the host's facts (CPUs, memory, OS) through `sysinfo`.
//! Where its runtime files go (`places`: the sockets' directory, private to its user).
//! It also waits for processes and in-process changes (`watch`: pidfds, eventfds) so nothing polls.
//!
//! **Architecture invariant:** every crate that asks these questions asks them here, so
//! that a zombie, a reused pid or a hard link is judged the same way everywhere.

pub mod disk;
pub mod docker_command;
pub mod facts;
pub mod mounts;
pub mod names;
pub mod places;
pub mod privilege;
pub mod process;
pub mod watch;
