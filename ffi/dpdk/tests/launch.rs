//! Launching functions on worker lcores, on a real EAL with one worker lcore (`-l 0-1`, `--no-huge`):
//! only on enabled worker lcores, one function per lcore at a time, a function refused is dropped unrun,
//! and a handle waits for its function's end (when joined or dropped). One test: the EAL and its main
//! lcore belong to the thread that runs it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dpdk::{DpdkError, Eal, MainLcore};

/// Counts its drops: what a launched function captured is dropped exactly once, run or refused.
struct Witness(Arc<AtomicU32>);

impl Drop for Witness {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn launch_runs_one_function_per_worker_lcore_and_waits_for_it() {
    // SAFETY: geteuid has no precondition.
    assert_eq!(unsafe { libc::geteuid() }, 0, "DPDK tests need root (/var/run/dpdk)");
    let prefix = format!("dflaunch{}", std::process::id());
    let eal = Eal::init(
        "launch",
        &["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", &prefix, "--log-level", "warning"],
    )
    .expect("EAL init");
    let main = MainLcore::here(&eal).expect("the thread that ran the init is the main lcore");
    assert_eq!(eal.worker_lcores(), vec![1]);

    // Not worker lcores: the main one, one not in -l, one past RTE_MAX_LCORE (DPDK would index out of
    // bounds). The function is dropped unrun.
    let dropped = Arc::new(AtomicU32::new(0));
    for lcore in [0, 2, 100_000] {
        let w = Witness(dropped.clone());
        let r = main.launch(lcore, move || {
            drop(w);
            1
        });
        assert!(matches!(r, Err(DpdkError::NotAWorkerLcore(l)) if l == lcore), "{r:?}");
        assert!(matches!(main.wait(lcore), Err(DpdkError::NotAWorkerLcore(_))));
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 3);

    // A busy lcore refuses a second function, which is dropped unrun; the first goes on.
    let release = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicU32::new(0));
    let first = {
        let (release, ran) = (release.clone(), ran.clone());
        main.launch(1, move || {
            while !release.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            ran.fetch_add(1, Ordering::SeqCst);
            7
        })
        .expect("launch on lcore 1")
    };
    assert_eq!(first.lcore(), 1);
    assert!(main.is_running(1).unwrap());
    let (w, ran2) = (Witness(dropped.clone()), ran.clone());
    let second = main.launch(1, move || {
        drop(w);
        ran2.fetch_add(100, Ordering::SeqCst);
        8
    });
    assert!(matches!(second, Err(DpdkError::LcoreBusy(1))), "{second:?}");
    assert_eq!(dropped.load(Ordering::SeqCst), 4, "the refused function was dropped");
    assert!(!first.is_finished());
    // The handle is Send: any thread may wait for the function.
    let waiter = std::thread::spawn(move || first.join());
    release.store(true, Ordering::Release);
    assert_eq!(waiter.join().unwrap(), 7);
    assert_eq!(ran.load(Ordering::SeqCst), 1, "only the first function ran");
    assert_eq!(main.wait(1).unwrap(), 7);

    // Launch after launch on one lcore: a joined function's lcore is not busy, even while DPDK is still
    // marking it free.
    for i in 0..200 {
        assert_eq!(main.launch(1, move || i).expect("relaunch after join").join(), i);
    }

    // Dropping a handle waits for its function.
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let handle = main
        .launch(1, move || {
            std::thread::sleep(Duration::from_millis(50));
            d.store(true, Ordering::SeqCst);
            0
        })
        .unwrap();
    drop(handle);
    assert!(done.load(Ordering::SeqCst), "dropping the handle waited for the function");

    // A panic in the function is its result -1, not a dead lcore (and no message: it is expected).
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = main.launch(1, || panic!("a worker's panic")).unwrap().join();
    drop(std::panic::take_hook());
    assert_eq!(panicked, -1);
    assert_eq!(main.launch(1, || 3).unwrap().join(), 3);

    // SAFETY: every launched function was joined; nothing of DPDK is used after.
    unsafe { eal.cleanup() };
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
