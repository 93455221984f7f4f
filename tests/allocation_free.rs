//! The request checks every request pays allocate nothing for a clean
//! request: counted by a global allocator in this test binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use portcullis::request_target::{check_host, check_target, CheckedTarget};
use portcullis::route::looser_readings;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(work: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    work();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn clean_requests_are_checked_without_allocating() {
    let targets: [&[u8]; 4] = [
        b"/",
        b"/api/v1/users/42?limit=10&offset=%20",
        b"/caf%C3%A9/a.b/~user/",
        b"/a;b=c/d",
    ];
    for target in targets {
        let count = allocations_during(|| {
            let hosts = [&b"api.example.com"[..]];
            let host = check_host(&mut hosts.into_iter(), None, false).unwrap();
            let checked = check_target(target, false, host).unwrap();
            assert!(matches!(checked, CheckedTarget::Clean { .. }));
            if !checked.path().contains(';') {
                assert!(looser_readings(checked.path()).is_empty());
            }
        });
        assert_eq!(count, 0, "{}", String::from_utf8_lossy(target));
    }
    // A normalized one allocates its copy: the counter counts.
    let count = allocations_during(|| {
        let checked = check_target(b"/%61dmin", false, None).unwrap();
        assert_eq!(checked.path(), "/admin");
    });
    assert!(count > 0);
}
