//! The hot-path costs of issue #5 and #6 (issue #7's micro-benchmarks): one token bucket
//! admission (GCRA, one compare-and-swap), and building a cache key with and without declared
//! key parameters.

use portico::cache::key::{KeyInput, build};
use portico::config::cache::KeyParameter;
use portico::limits::bucket::Bucket;
use portico_proto::throttle::BucketKey;

fn main() {
    divan::main();
}

/// Admission by a bucket that always has room (the common case: a never-rejecting plan).
#[divan::bench]
fn bucket_admit(bencher: divan::Bencher) {
    let bucket = Bucket::new(BucketKey::Account, 1e12, 2e9);
    let mut now = 1_000_000_000u64;
    bencher.bench_local(|| {
        now += 1_000;
        divan::black_box(&bucket).try_acquire(divan::black_box(now))
    });
}

/// Admission refused (an empty bucket): the 429 path.
#[divan::bench]
fn bucket_refuse(bencher: divan::Bencher) {
    let bucket = Bucket::new(BucketKey::Account, 0.001, 1.0);
    let now = 1_000_000_000u64;
    bucket.try_acquire(now);
    bencher.bench_local(|| divan::black_box(&bucket).try_acquire(divan::black_box(now)));
}

fn key_input<'a>(headers: &'a http::HeaderMap, params: &'a [(&'a str, &'a str)]) -> KeyInput<'a> {
    KeyInput {
        api_id: "a1b2c3d4e5",
        stage: "prod",
        generation: 3,
        verb: "GET",
        resource_path: "/pets/{petId}",
        path_parameters: params,
        query: Some("color=brown&page=2&utm_source=mail"),
        headers,
    }
}

#[divan::bench]
fn cache_key_plain(bencher: divan::Bencher) {
    let headers = http::HeaderMap::new();
    let params = [("petId", "42")];
    let input = key_input(&headers, &params);
    bencher.bench_local(|| build(divan::black_box(&input), &[]));
}

#[divan::bench]
fn cache_key_with_parameters(bencher: divan::Bencher) {
    let mut headers = http::HeaderMap::new();
    headers.insert("accept-language", "en".parse().expect("a header value"));
    let params = [("petId", "42")];
    let input = key_input(&headers, &params);
    let declared = [
        KeyParameter::Query("color".to_string()),
        KeyParameter::Header("accept-language".to_string()),
    ];
    bencher.bench_local(|| build(divan::black_box(&input), &declared));
}
