//! The one error type of the safe layer. DPDK reports failures as negative errno values (or through
//! `rte_errno`); each variant names the call that failed and keeps that errno.

use std::fmt;

/// A positive errno value as DPDK reported it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// DPDK's `rte_errno` of the calling thread.
    pub fn last() -> Errno {
        // SAFETY: vs_rte_errno reads a thread-local integer; no preconditions.
        Errno(unsafe { dpdk_sys::vs_rte_errno() })
    }

    /// From a DPDK return value: negative errno values and plain `-1` (then `rte_errno` holds the cause).
    pub fn from_ret(ret: i32) -> Errno {
        if ret == -1 {
            let e = Errno::last();
            if e.0 != 0 {
                return e;
            }
        }
        Errno(ret.abs())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
        let msg = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_strerror(self.0)) };
        write!(f, "{} (errno {})", msg.to_string_lossy(), self.0)
    }
}

/// What went wrong in a DPDK setup call. The fast path never returns these.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error("the DPDK EAL was already initialised in this process")]
    EalAlreadyInitialised,
    #[error("EAL argument {0:?} contains a NUL byte")]
    EalArgument(String),
    #[error("rte_eal_init failed: {0} (check the EAL arguments; each DPDK process needs its own --file-prefix)")]
    EalInit(Errno),
    #[error("cannot create mempool {name:?} of {size} mbufs: {errno}")]
    MempoolCreate { name: String, size: u32, errno: Errno },
    #[error("cannot create ring {name:?}: {errno}")]
    RingCreate { name: String, errno: Errno },
    #[error("invalid device arguments {0:?}")]
    Devargs(String),
    #[error("cannot probe device {devargs:?}: {errno}")]
    Probe { devargs: String, errno: Errno },
    #[error("no DPDK port is named {0:?}")]
    PortNotFound(String),
    #[error("port {port}: {call} failed: {errno}")]
    Port { port: u16, call: &'static str, errno: Errno },
    #[error("port {port}: asked for {asked} {kind} queues, the device supports at most {max}")]
    TooManyQueues { port: u16, kind: &'static str, asked: u16, max: u16 },
    #[error("port {port}: {kind} queue {queue} was already taken or does not exist")]
    QueueTaken { port: u16, kind: &'static str, queue: u16 },
    #[error("launching on worker lcores is for the main lcore's thread (lcore {main}, the one that ran the EAL's init); this thread is lcore {current:?}")]
    NotMainLcore { main: u32, current: Option<u32> },
    #[error("lcore {0} is not a worker lcore of this EAL (one of -l/--lcores, other than the main lcore)")]
    NotAWorkerLcore(u32),
    #[error("lcore {0} is still running a function launched before")]
    LcoreBusy(u32),
    #[error("port {port} ({name}) is already open: a port has one owner")]
    PortInUse { port: u16, name: String },
    #[error("port {port}: {call} refused: handles of its queues are alive (a burst may be running; drop them first)")]
    QueuesInUse { port: u16, call: &'static str },
    #[error("lcore {lcore}: {call} failed: {errno}")]
    Lcore { lcore: u32, call: &'static str, errno: Errno },
}

pub type Result<T, E = DpdkError> = std::result::Result<T, E>;
