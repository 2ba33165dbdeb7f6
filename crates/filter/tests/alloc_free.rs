//! Matching runs once per record, so it must not allocate: this counts the allocations made
//! by `matches` with every operator in play.

use esmd_filter::{FilterCriteria, Pattern};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 16]))) > 0);
}

#[test]
fn matching_does_not_allocate() {
    let pattern = Pattern::compile(
        r#"{
          "source": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "order"],
          "detail": {
            "state": [{"anything-but": {"equals-ignore-case": ["STOPPED", "Été"]}}],
            "name": [{"prefix": {"equals-ignore-case": "EVENT"}}, {"suffix": ".png"}, {"equals-ignore-case": "ÄRGER"}],
            "path": [{"wildcard": "*/lib/*"}, {"anything-but": {"wildcard": "*/tmp/*"}}],
            "count": [{"numeric": [">", 0, "<=", 5.5]}, 300, {"anything-but": [7, 8]}],
            "ratio": [{"numeric": ["<", 1]}],
            "ip": [{"cidr": "10.0.0.0/8"}, "2001:db8::1"],
            "gone": [{"exists": false}],
            "items": {"id": [2], "deleted": [{"exists": false}]},
            "$or": [{"flag": [true]}, {"nothing": [null]}]
          },
          "x.y": [{"exists": true}]
        }"#,
    )
    .expect("valid pattern");
    let criteria = FilterCriteria::compile(&[r#"{"never": ["x"]}"#.to_string(), r#"{"source": [{"prefix": "ord"}]}"#.to_string()])
        .expect("valid criteria");
    let hit = json!({
        "source": "order",
        "detail": {
            "state": "running",
            "name": "eventbridge.png",
            "path": "/usr/lib/x",
            "count": 3,
            "ratio": 0.123456,
            "ip": "10.1.2.3",
            "items": [{"id": 1, "deleted": true}, {"id": 2}],
            "flag": true
        },
        "x": {"y": null}
    });
    let miss = json!({"source": "order", "detail": {"state": "Stopped"}, "x.y": 1});

    let mut results = (false, false, false);
    let count = allocations_during(|| {
        for _ in 0..100 {
            results = (pattern.matches(&hit), pattern.matches(&miss), criteria.matches(&hit));
        }
    });
    assert_eq!(results, (true, false, true));
    assert_eq!(count, 0, "matching allocated {count} times");
}
