//! The forwarding path alone: one engine, its participants in memory
//! ([`media_relay::lab`]), no sockets. Times the engine from encrypted
//! datagrams in to encrypted datagrams out (routing, SRTP, the WebRTC
//! pipeline, the room's decisions), and prints its time per forwarded packet:
//! the CPU time of this thread (from `/proc/thread-self/schedstat`, so time
//! the machine gave to others does not count), and the wall-clock time.
//!
//! ```text
//! cargo bench -p media-relay --bench forward                  # 50 one-to-one rooms
//! cargo bench -p media-relay --bench forward -- --rooms 10 --per-room 4 --rounds 500
//! ```
//!
//! Each round, every participant sends one audio packet (80 bytes) and two
//! video packets (1,100 bytes); what the engine sends is then delivered and
//! answered (reports, feedback) outside the timed part. Run without `--bench`
//! (as `cargo test --all-targets` does) it is a smoke run: two small rooms,
//! a few rounds, and the same check that every packet reached its receivers.

// A benchmark, like a test, should stop loudly at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use media_relay::lab::Lab;

struct Args {
    rooms: usize,
    per_room: usize,
    rounds: usize,
    smoke: bool,
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !raw.iter().any(|a| a == "--bench");
    let mut args = if smoke {
        Args { rooms: 2, per_room: 2, rounds: 20, smoke }
    } else {
        Args { rooms: 50, per_room: 2, rounds: 2_000, smoke }
    };
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<usize>().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--rooms" => args.rooms = value(),
            "--per-room" => args.per_room = value(),
            "--rounds" => args.rounds = value(),
            "--bench" => {}
            other => panic!("unknown flag {other}; see the top of benches/forward.rs"),
        }
    }
    assert!(args.per_room >= 2, "--per-room: at least 2, or nothing is forwarded");
    args
}

/// This thread's CPU time so far (Linux: `/proc/thread-self/schedstat`, in
/// ns); zero where there is none.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn main() {
    let args = args();
    let started = Instant::now();
    let mut lab = Lab::new(args.rooms, args.per_room).expect("every participant connected");
    println!(
        "forward: {} rooms of {} participants connected in {:.1} s{}",
        args.rooms,
        args.per_room,
        started.elapsed().as_secs_f64(),
        if args.smoke { " (smoke run; `cargo bench` for figures)" } else { "" }
    );
    // The first rounds warm the caches and the allocator; not counted.
    for _ in 0..args.rounds / 10 {
        let input = lab.media(1);
        let output = lab.forward(input);
        lab.deliver(output);
    }
    let (mut timed, mut cpu, mut datagrams, mut forwarded) = (Duration::ZERO, Duration::ZERO, 0u64, 0u64);
    let received_before = lab.received();
    for _ in 0..args.rounds {
        let input = lab.media(1);
        datagrams += input.len() as u64;
        let (at, cpu_at) = (Instant::now(), thread_cpu());
        let output = lab.forward(input);
        timed += at.elapsed();
        cpu += thread_cpu().saturating_sub(cpu_at);
        forwarded += output.forwarded;
        lab.deliver(output);
    }
    let received = lab.received() - received_before;
    // Without a thread CPU clock, the wall clock.
    let cpu = if cpu.is_zero() { timed } else { cpu };
    let per_packet = cpu.as_secs_f64() * 1e6 / forwarded.max(1) as f64;
    println!(
        "forward: {datagrams} datagrams in, {forwarded} packets forwarded, {received} received; \
         {:.3} s of CPU in the engine ({:.3} s wall clock)",
        cpu.as_secs_f64(),
        timed.as_secs_f64()
    );
    println!(
        "forward: {per_packet:.2} µs CPU per forwarded packet, {:.2} per datagram in, {:.2} wall clock \
         ({:.0} forwarded packets/s on one core)",
        cpu.as_secs_f64() * 1e6 / datagrams.max(1) as f64,
        timed.as_secs_f64() * 1e6 / forwarded.max(1) as f64,
        1e6 / per_packet
    );
    // Every participant's packets go to everyone else in its room.
    let participants = (args.rooms * args.per_room) as u64;
    let expected = 3 * args.rounds as u64 * participants * (args.per_room as u64 - 1);
    assert_eq!(forwarded, expected, "every packet forwarded to every other participant");
    assert_eq!(received, forwarded, "every forwarded packet received and decrypted");
}
