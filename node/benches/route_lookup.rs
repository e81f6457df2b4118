//! Route lookup in a stage with 10,000 resources (issue #7's target: <= 1 us).
//!
//! The table holds `/svc{i}/items/{id}` for i in 0..10,000, the shape of a large API: ten
//! thousand literal first segments (binary searched) and a path variable below each. Looked
//! up: the last route, a middle one, a miss (the 403 path), and a 2-route table for scale.

use portico::route::table::RouteTable;

const N_ROUTES: usize = 10_000;

fn main() {
    divan::main();
}

fn table(n_routes: usize) -> RouteTable<usize> {
    let mut table = RouteTable::new();
    for route_idx in 0..n_routes {
        table
            .insert(&format!("/svc{route_idx}/items/{{id}}"), route_idx)
            .expect("valid template");
    }
    table
}

#[divan::bench(args = ["/svc9999/items/42", "/svc5000/items/abc-def", "/nothing/here"])]
fn lookup_10k(bencher: divan::Bencher, path: &str) {
    let table = table(N_ROUTES);
    bencher.bench_local(|| {
        divan::black_box(&table)
            .lookup(divan::black_box(path))
            .map(|hit| *hit.value)
    });
}

#[divan::bench]
fn lookup_2(bencher: divan::Bencher) {
    let table = table(2);
    bencher.bench_local(|| {
        divan::black_box(&table)
            .lookup(divan::black_box("/svc1/items/42"))
            .map(|hit| *hit.value)
    });
}

#[divan::bench(sample_count = 10)]
fn build_10k(bencher: divan::Bencher) {
    bencher.bench_local(|| table(N_ROUTES));
}
