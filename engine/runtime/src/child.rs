//! Code that runs between clone and execve.
//!
//! Only raw syscalls on data prepared by the parent ([`Prepared`]): no
//! allocation, no locks, no panics, because the engine may be
//! multi-threaded and the child gets a copy of a process whose other
//! threads might have held the allocator's locks. Errors travel to the
//! parent as fixed-size [`Msg`] records over a close-on-exec pipe.

use std::ffi::{c_char, c_int, c_ulong, CStr, CString};
use std::os::fd::RawFd;
use std::ptr;

use seccompiler::BpfProgram;

use crate::caps;

/// One record on the child → parent pipe.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Msg {
    pub kind: u32,
    pub stage: u32,
    pub value: i32,
    pub index: i32,
}

pub(crate) const MSG_ERROR: u32 = 1;
pub(crate) const MSG_PID: u32 = 2;

/// Declares `Stage` and its decoding from the number the child reports, from one list.
macro_rules! stages {
    ($first:ident, $($rest:ident),* $(,)?) => {
        /// Where the child was when it failed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub(crate) enum Stage {
            $first = 1,
            $($rest),*
        }

        impl Stage {
            pub(crate) fn from_u32(v: u32) -> Option<Stage> {
                [Stage::$first, $(Stage::$rest),*].into_iter().find(|s| *s as u32 == v)
            }
        }
    };
}

stages!(
    Stdio,
    NetNs,
    Cgroup,
    CgroupNs,
    Propagation,
    BindRoot,
    Pivot,
    Step,
    Hostname,
    Loopback,
    Rlimit,
    Bounding,
    Groups,
    Gid,
    Uid,
    Capset,
    Cwd,
    NoNewPrivs,
    CloseFds,
    Seccomp,
    ExecNotFound,
    ExecDenied,
    Exec,
    Setns,
    Chroot,
    Fork,
    Console,
);

/// A mount-namespace step run after pivot_root (paths are inside the container).
#[derive(Debug)]
pub(crate) enum Step {
    Mkdir(CString),
    Touch(CString),
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Attach a detached mount (from `open_tree` in the parent) at `target`.
    Attach {
        fd: RawFd,
        target: CString,
    },
    /// A new file system of `fstype` (proc, sysfs) with mount attributes `attr`, made
    /// before pivot_root and attached at `target` after it: a user namespace lets a process
    /// make one only while the host's own is visible in its mount namespace.
    Fresh {
        fstype: CString,
        attr: u64,
        target: CString,
    },
    /// Hide a path: an empty read-only tmpfs over a directory, /dev/null over a file.
    Mask(CString),
    /// Bind a path over itself read-only.
    ReadOnly(CString),
    /// Remount the container's root read-only (`--read-only`); the mounts on it stay as
    /// they are.
    RootReadOnly,
    /// Write `value` into `path` (a `/proc/sys/…` file: `--sysctl`).
    Write {
        path: CString,
        value: CString,
    },
}

/// Everything the child needs, prepared before clone.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Owns the strings `argv_ptrs` points into.
    #[allow(dead_code)]
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const c_char>,
    /// Owns the strings `envp_ptrs` points into.
    #[allow(dead_code)]
    pub envp: Vec<CString>,
    pub envp_ptrs: Vec<*const c_char>,
    pub candidates: Vec<CString>,
    pub rootfs: Option<CString>,
    pub steps: Vec<Step>,
    pub hostname: Option<CString>,
    pub netns_fd: Option<RawFd>,
    /// Another container's UTS namespace to join (`--uts container:…`).
    pub utsns_fd: Option<RawFd>,
    /// Another container's IPC namespace to join (`--ipc container:…`).
    pub ipcns_fd: Option<RawFd>,
    pub cgroup_fds: Vec<RawFd>,
    pub unshare_cgroupns: bool,
    pub lo_up: bool,
    /// Exec only: namespace fds to join, in order, and the container's root.
    pub ns_fds: Vec<RawFd>,
    pub root_fd: Option<RawFd>,
    pub rlimits: Vec<(c_int, libc::rlimit)>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// False inside a user namespace that denies setgroups (a rootless engine mapping one
    /// id): the groups are left as they are.
    pub set_groups: bool,
    pub cwd: CString,
    pub caps: u64,
    pub last_cap: u32,
    pub filters: Vec<BpfProgram>,
    /// Fds to become 0, 1, 2; `None` keeps the inherited ones.
    pub stdio: Option<[RawFd; 3]>,
    pub pty: bool,
    /// `Stdio::ContainerPty`: where to send the master of the container's own pty.
    pub console: Option<RawFd>,
}

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
/// At most this many [`Step::Fresh`] file systems per container.
pub(crate) const MAX_FRESH: usize = 4;

fn errno() -> i32 {
    caps::errno()
}

fn report(pipe: RawFd, kind: u32, stage: Stage, value: i32, index: i32) {
    let msg = Msg {
        kind,
        stage: stage as u32,
        value,
        index,
    };
    // SAFETY: writing a plain repr(C) struct to a pipe.
    unsafe {
        libc::write(
            pipe,
            &msg as *const Msg as *const libc::c_void,
            std::mem::size_of::<Msg>(),
        );
    }
}

fn fail(pipe: RawFd, stage: Stage, err: i32, index: i32) -> ! {
    report(pipe, MSG_ERROR, stage, err, index);
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(127) }
}

fn check(rc: c_int) -> Result<(), i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

fn reset_signals() {
    // SAFETY: plain signal-mask and disposition syscalls on stack data.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

fn setup_stdio(p: &Prepared) -> Result<(), i32> {
    // SAFETY: fd juggling with raw syscalls.
    unsafe {
        libc::setsid();
        if let Some(fds) = p.stdio {
            // Move the sources out of the way of 0..2 first.
            let mut high = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3);
                if high[i] < 0 {
                    return Err(errno());
                }
            }
            for (i, fd) in high.iter().enumerate() {
                check(libc::dup2(*fd, i as c_int))?;
            }
        }
        if p.pty {
            check(libc::ioctl(0, libc::TIOCSCTTY as _, 0))?;
        }
    }
    Ok(())
}

/// One byte of payload: a message that carries an fd must carry some data too.
pub(crate) fn byte_iovec(byte: &mut [u8; 1]) -> libc::iovec {
    libc::iovec {
        iov_base: byte.as_mut_ptr() as *mut libc::c_void,
        iov_len: 1,
    }
}

/// A message with one iovec and room for one `SCM_RIGHTS` fd in `control`.
pub(crate) fn fd_msghdr(iov: &mut libc::iovec, control: &mut [u64; 4]) -> libc::msghdr {
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(control);
    msg
}

/// Opens a pty in the container's devpts (mounted by the steps), makes the slave this
/// process's stdio and controlling terminal, and sends the master over `sock`.
fn console(sock: RawFd) -> Result<(), i32> {
    // SAFETY: raw syscalls on fds this function opens; the message buffers live on the
    // stack for the duration of sendmsg.
    unsafe {
        let master = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if master < 0 {
            return Err(errno());
        }
        let unlock: c_int = 0;
        check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
        let slave = libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(errno());
        }
        for fd in 0..3 {
            check(libc::dup2(slave, fd))?;
        }
        if slave > 2 {
            libc::close(slave);
        }
        check(libc::ioctl(0, libc::TIOCSCTTY as _, 0))?;
        let mut byte = [0u8; 1];
        let mut control = [0u64; 4];
        let mut iov = byte_iovec(&mut byte);
        let mut msg = fd_msghdr(&mut iov, &mut control);
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut c_int, master);
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(errno());
        }
        libc::close(master);
        libc::close(sock);
    }
    Ok(())
}

fn join_cgroups(p: &Prepared, pipe: RawFd) {
    for (i, fd) in p.cgroup_fds.iter().enumerate() {
        // SAFETY: write of a static buffer.
        // "0" means the writing process itself, whatever pid namespace it is in.
        let rc = unsafe { libc::write(*fd, b"0".as_ptr() as *const libc::c_void, 1) };
        if rc < 0 {
            fail(pipe, Stage::Cgroup, errno(), i as i32);
        }
    }
}

fn mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_char,
) -> Result<(), i32> {
    // SAFETY: all pointers are null or NUL-terminated strings owned by Prepared.
    check(unsafe { libc::mount(src, target, fstype, flags, data as *const libc::c_void) })
}

fn pivot(rootfs: &CStr) -> Result<(), (Stage, i32)> {
    let dot = c".";
    mount(
        ptr::null(),
        c"/".as_ptr(),
        ptr::null(),
        libc::MS_REC | libc::MS_PRIVATE,
        ptr::null(),
    )
    .map_err(|e| (Stage::Propagation, e))?;
    mount(
        rootfs.as_ptr(),
        rootfs.as_ptr(),
        ptr::null(),
        libc::MS_BIND | libc::MS_REC,
        ptr::null(),
    )
    .map_err(|e| (Stage::BindRoot, e))?;
    // SAFETY: raw syscalls on NUL-terminated strings.
    unsafe {
        let flags = libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC;
        let old = libc::open(c"/".as_ptr(), flags);
        let new = libc::open(rootfs.as_ptr(), flags);
        if old < 0 || new < 0 {
            return Err((Stage::Pivot, errno()));
        }
        let step = (|| -> Result<(), i32> {
            check(libc::fchdir(new))?;
            check(libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as c_int)?;
            check(libc::fchdir(old))?;
            mount(
                ptr::null(),
                dot.as_ptr(),
                ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                ptr::null(),
            )?;
            check(libc::umount2(dot.as_ptr(), libc::MNT_DETACH))?;
            check(libc::chdir(c"/".as_ptr()))
        })();
        libc::close(old);
        libc::close(new);
        step.map_err(|e| (Stage::Pivot, e))
    }
}

fn is_dir(path: &CStr) -> Result<bool, i32> {
    // SAFETY: stat into a zeroed stack buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::stat(path.as_ptr(), &mut st))?;
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }
}

/// Makes the file system of a [`Step::Fresh`]: fsopen, create, fsmount; the mount's fd.
fn make_fresh(fstype: &CStr, attr: u64) -> Result<c_int, i32> {
    // SAFETY: raw syscalls on a NUL-terminated string and fds this function owns.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) as c_int;
        if fs < 0 {
            return Err(errno());
        }
        let created = check(libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            ptr::null::<c_char>(),
            ptr::null::<c_char>(),
            0,
        ) as c_int);
        let mnt = created.and_then(|()| {
            let m = libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attr) as c_int;
            if m < 0 {
                Err(errno())
            } else {
                Ok(m)
            }
        });
        libc::close(fs);
        mnt
    }
}

/// Makes every [`Step::Fresh`] file system, in order, before pivot_root.
fn make_all_fresh(p: &Prepared, pipe: RawFd) -> [c_int; MAX_FRESH] {
    let mut fds = [-1; MAX_FRESH];
    let mut n = 0;
    for (i, step) in p.steps.iter().enumerate() {
        if let Step::Fresh { fstype, attr, .. } = step {
            match make_fresh(fstype, *attr) {
                Ok(fd) if n < MAX_FRESH => {
                    fds[n] = fd;
                    n += 1;
                }
                Ok(_) => fail(pipe, Stage::Step, libc::E2BIG, i as i32),
                Err(e) => fail(pipe, Stage::Step, e, i as i32),
            }
        }
    }
    fds
}

fn attach(fd: RawFd, target: &CStr) -> Result<(), i32> {
    // SAFETY: move_mount of an fd onto a NUL-terminated path.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    } as c_int)
}

/// Runs one step; `fresh` holds the [`Step::Fresh`] mounts not attached yet, in order.
fn run_step(step: &Step, fresh: &mut &[c_int]) -> Result<(), i32> {
    // SAFETY: raw syscalls on NUL-terminated strings owned by the step.
    unsafe {
        match step {
            Step::Mkdir(p) => match check(libc::mkdir(p.as_ptr(), 0o755)) {
                Err(libc::EEXIST) => Ok(()),
                r => r,
            },
            Step::Touch(p) => {
                let fd = libc::open(
                    p.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o644,
                );
                if fd < 0 {
                    let e = errno();
                    // An existing file (or a symlink to one) is fine as a mount point.
                    if e == libc::ELOOP || e == libc::EISDIR || e == libc::ETXTBSY {
                        return Ok(());
                    }
                    return Err(e);
                }
                libc::close(fd);
                Ok(())
            }
            Step::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => mount(
                opt_ptr(src),
                target.as_ptr(),
                opt_ptr(fstype),
                *flags,
                opt_ptr(data),
            ),
            Step::Symlink { target, link } => match check(libc::symlink(target.as_ptr(), link.as_ptr())) {
                Err(libc::EEXIST) => Ok(()),
                r => r,
            },
            Step::Attach { fd, target } => attach(*fd, target),
            Step::Fresh { target, .. } => {
                let (fd, rest) = fresh.split_first().ok_or(libc::E2BIG)?;
                *fresh = rest;
                attach(*fd, target)
            }
            Step::Mask(p) => match is_dir(p) {
                Err(libc::ENOENT) => Ok(()),
                Err(e) => Err(e),
                Ok(true) => mount(
                    c"tmpfs".as_ptr(),
                    p.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    ptr::null(),
                ),
                Ok(false) => mount(
                    c"/dev/null".as_ptr(),
                    p.as_ptr(),
                    ptr::null(),
                    libc::MS_BIND,
                    ptr::null(),
                ),
            },
            Step::Write { path, value } => {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW);
                if fd < 0 {
                    return Err(errno());
                }
                let bytes = value.as_bytes();
                let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
                let e = errno();
                libc::close(fd);
                if n < 0 {
                    Err(e)
                } else {
                    Ok(())
                }
            }
            Step::RootReadOnly => mount(
                ptr::null(),
                c"/".as_ptr(),
                ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                ptr::null(),
            ),
            Step::ReadOnly(p) => {
                match mount(
                    p.as_ptr(),
                    p.as_ptr(),
                    ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    ptr::null(),
                ) {
                    Err(libc::ENOENT) => return Ok(()),
                    r => r?,
                }
                mount(
                    ptr::null(),
                    p.as_ptr(),
                    ptr::null(),
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | libc::MS_NOEXEC,
                    ptr::null(),
                )
            }
        }
    }
}

fn loopback_up() -> Result<(), i32> {
    // SAFETY: ioctl on a fresh socket with a zeroed ifreq on the stack.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(errno());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as c_char;
        req.ifr_name[1] = b'o' as c_char;
        let r = (|| {
            check(libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req))?;
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            check(libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req))
        })();
        libc::close(sock);
        r
    }
}

/// The container's init: namespaces are already new (from clone).
pub(crate) fn run_init(p: &Prepared, pipe: RawFd) -> ! {
    reset_signals();
    if let Err(e) = setup_stdio(p) {
        fail(pipe, Stage::Stdio, e, 0);
    }
    if let Some(fd) = p.netns_fd {
        // SAFETY: setns on a namespace fd.
        if let Err(e) = check(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }) {
            fail(pipe, Stage::NetNs, e, 0);
        }
    }
    if let Some(fd) = p.utsns_fd {
        // SAFETY: setns on a namespace fd.
        if let Err(e) = check(unsafe { libc::setns(fd, libc::CLONE_NEWUTS) }) {
            fail(pipe, Stage::NetNs, e, 0);
        }
    }
    if let Some(fd) = p.ipcns_fd {
        // SAFETY: setns on a namespace fd.
        if let Err(e) = check(unsafe { libc::setns(fd, libc::CLONE_NEWIPC) }) {
            fail(pipe, Stage::NetNs, e, 0);
        }
    }
    join_cgroups(p, pipe);
    if p.unshare_cgroupns {
        // SAFETY: unshare with a constant flag.
        if let Err(e) = check(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) }) {
            fail(pipe, Stage::CgroupNs, e, 0);
        }
    }
    let fresh = make_all_fresh(p, pipe);
    if let Some(rootfs) = &p.rootfs {
        if let Err((stage, e)) = pivot(rootfs) {
            fail(pipe, stage, e, 0);
        }
    }
    let mut unattached = &fresh[..];
    for (i, step) in p.steps.iter().enumerate() {
        if let Err(e) = run_step(step, &mut unattached) {
            fail(pipe, Stage::Step, e, i as i32);
        }
    }
    if let Some(sock) = p.console {
        if let Err(e) = console(sock) {
            fail(pipe, Stage::Console, e, 0);
        }
    }
    if let Some(h) = &p.hostname {
        // SAFETY: sethostname with a valid buffer.
        let rc = unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) };
        if let Err(e) = check(rc) {
            fail(pipe, Stage::Hostname, e, 0);
        }
    }
    if p.lo_up {
        if let Err(e) = loopback_up() {
            fail(pipe, Stage::Loopback, e, 0);
        }
    }
    finish(p, pipe)
}

/// First child of an exec: joins the container's namespaces, then forks the
/// real process (as a sibling, via CLONE_PARENT) so it lands in the pid
/// namespace and stays the caller's child.
pub(crate) fn run_exec(p: &Prepared, pipe: RawFd) -> ! {
    reset_signals();
    join_cgroups(p, pipe);
    for (i, fd) in p.ns_fds.iter().enumerate() {
        // SAFETY: setns on a namespace fd.
        if let Err(e) = check(unsafe { libc::setns(*fd, 0) }) {
            fail(pipe, Stage::Setns, e, i as i32);
        }
    }
    if let Some(root) = p.root_fd {
        // SAFETY: fchdir/chroot on an fd the parent opened.
        let r =
            check(unsafe { libc::fchdir(root) }).and_then(|_| check(unsafe { libc::chroot(c".".as_ptr()) }));
        if let Err(e) = r {
            fail(pipe, Stage::Chroot, e, 0);
        }
    }
    // SAFETY: fork-like clone; no stack given, so the child runs on a copy.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        fail(pipe, Stage::Fork, errno(), 0);
    }
    if pid == 0 {
        if let Err(e) = setup_stdio(p) {
            fail(pipe, Stage::Stdio, e, 0);
        }
        finish(p, pipe)
    }
    report(pipe, MSG_PID, Stage::Fork, pid as i32, 0);
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

/// Limits, credentials, capabilities, no_new_privs, fds, seccomp, execve.
fn finish(p: &Prepared, pipe: RawFd) -> ! {
    for (i, (res, lim)) in p.rlimits.iter().enumerate() {
        // SAFETY: setrlimit with a stack struct.
        if let Err(e) = check(unsafe { libc::setrlimit(*res as _, lim) }) {
            fail(pipe, Stage::Rlimit, e, i as i32);
        }
    }
    if let Err(e) = caps::drop_bounding(p.caps, p.last_cap) {
        fail(pipe, Stage::Bounding, e, 0);
    }
    // Raw syscalls: glibc's set*id wrappers broadcast to (stale) threads.
    // SAFETY: raw credential syscalls.
    unsafe {
        if p.set_groups {
            let rc = libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr());
            if let Err(e) = check(rc as c_int) {
                fail(pipe, Stage::Groups, e, 0);
            }
        }
        let rc = libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid);
        if let Err(e) = check(rc as c_int) {
            fail(pipe, Stage::Gid, e, 0);
        }
        let rc = libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid);
        if let Err(e) = check(rc as c_int) {
            fail(pipe, Stage::Uid, e, 0);
        }
    }
    // Root keeps docker's set; other users get none (as with docker), and
    // the bounding set limits what setuid binaries can gain.
    let set = if p.uid == 0 { p.caps } else { 0 };
    if let Err(e) = caps::set_caps(set) {
        fail(pipe, Stage::Capset, e, 0);
    }
    // SAFETY: chdir on a NUL-terminated string.
    if let Err(e) = check(unsafe { libc::chdir(p.cwd.as_ptr()) }) {
        fail(pipe, Stage::Cwd, e, 0);
    }
    // SAFETY: prctl with integer arguments.
    if let Err(e) = check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }) {
        fail(pipe, Stage::NoNewPrivs, e, 0);
    }
    if let Err(e) = cloexec_all() {
        fail(pipe, Stage::CloseFds, e, 0);
    }
    for (i, f) in p.filters.iter().enumerate() {
        if let Err(e) = crate::seccomp::install(f) {
            fail(pipe, Stage::Seccomp, e, i as i32);
        }
    }
    let mut denied = false;
    for (i, cand) in p.candidates.iter().enumerate() {
        // SAFETY: argv/envp are NULL-terminated arrays of valid C strings.
        unsafe { libc::execve(cand.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr()) };
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            e => fail(pipe, Stage::Exec, e, i as i32),
        }
    }
    if denied {
        fail(pipe, Stage::ExecDenied, libc::EACCES, 0)
    }
    fail(pipe, Stage::ExecNotFound, libc::ENOENT, 0)
}

/// Marks every fd above 2 close-on-exec, so nothing of the engine leaks
/// into the container while the error pipe stays usable until execve.
fn cloexec_all() -> Result<(), i32> {
    // SAFETY: close_range with the CLOEXEC flag closes nothing now.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return Ok(());
    }
    // Older kernels: walk up to the fd limit.
    // SAFETY: getrlimit/fcntl on integers.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let max = lim.rlim_cur.min(1 << 20) as c_int;
        for fd in 3..max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}
