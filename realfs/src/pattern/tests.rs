use super::classify::fill_bytes;
use super::*;

fn data(name: &str, delta: i64) -> Origin {
    Origin::Data {
        name: name.to_string(),
        delta,
    }
}
fn ext(start: u64, end: u64, origin: Origin) -> Extent {
    Extent { start, end, origin }
}

#[test]
fn fnv_known_values() {
    assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
}

#[test]
fn sector_layout() {
    let s = sector_bytes(name_hash("D"), 4096);
    assert_eq!(&s[0..8], MAGIC);
    assert_eq!(parse_tag(&s), Some((name_hash("D"), 4096)));
    assert!(s[TAG_LEN..].iter().all(|&b| b != 0));
    assert_eq!(data_bytes("D", 4096, 512), s.to_vec());
    // Deterministic, and different for other names and offsets.
    assert_eq!(sector_bytes(name_hash("D"), 4096), s);
    assert_ne!(sector_bytes(name_hash("E"), 4096)[TAG_LEN..], s[TAG_LEN..]);
    assert_ne!(sector_bytes(name_hash("D"), 4608)[TAG_LEN..], s[TAG_LEN..]);
}

#[test]
fn data_bytes_any_offset_is_a_window_of_the_stream() {
    let whole = data_bytes("D", 0, 4096);
    for (off, len) in [
        (0, 0),
        (1, 10),
        (500, 30),
        (511, 513),
        (1000, 2000),
        (3, 4093),
    ] {
        assert_eq!(
            data_bytes("D", off as u64, len),
            whole[off..off + len],
            "{off} {len}"
        );
    }
}

#[test]
fn classify_sector_cases() {
    let names = ["D", "E"];
    let s = sector_bytes(name_hash("E"), 1024);
    assert_eq!(
        classify_sector(&s, &names),
        SectorOrigin::Data {
            name: "E".into(),
            data_off: 1024
        }
    );
    assert_eq!(classify_sector(&s, &["D"]), SectorOrigin::Unknown);
    assert_eq!(classify_sector(&[0; SECTOR], &names), SectorOrigin::Zero);
    let mut torn = s;
    torn[300] ^= 1;
    assert_eq!(classify_sector(&torn, &names), SectorOrigin::Unknown);
    let mut bad_tag = s;
    bad_tag[16] ^= 2; // offset changed, checksum no longer matches
    assert_eq!(classify_sector(&bad_tag, &names), SectorOrigin::Unknown);
    let garbage: [u8; SECTOR] = std::array::from_fn(|i| (i * 7 + 3) as u8);
    assert_eq!(classify_sector(&garbage, &names), SectorOrigin::Unknown);
}

#[test]
fn aligned_write_roundtrip() {
    let content = data_bytes("D", 0, 8192);
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![ext(0, 8192, data("D", 0))]
    );
    // The same bytes read from file offset 4096: delta -4096.
    assert_eq!(
        classify(&content, 4096, &["D"]),
        vec![ext(4096, 12288, data("D", -4096))]
    );
}

#[test]
fn unaligned_writes_roundtrip() {
    // File: zeros, then D[100..2100) written at file offset 100 (data_off = file offset).
    let mut content = vec![0u8; 3000];
    content[100..2100].copy_from_slice(&data_bytes("D", 100, 2000));
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 100, Origin::Zero),
            ext(100, 2100, data("D", 0)),
            ext(2100, 3000, Origin::Zero)
        ]
    );
    // D[0..2000) written at file offset 777: found by its tags at 777, 1289, ...
    let mut content = vec![0u8; 3000];
    content[777..2777].copy_from_slice(&data_bytes("D", 0, 2000));
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 777, Origin::Zero),
            ext(777, 2777, data("D", -777)),
            ext(2777, 3000, Origin::Zero)
        ]
    );
    // D[1000..1300) at file offset 5: crosses a data-sector boundary at data offset 1024.
    let mut content = vec![0u8; 400];
    content[5..305].copy_from_slice(&data_bytes("D", 1000, 300));
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 5, Origin::Zero),
            ext(5, 305, data("D", 995)),
            ext(305, 400, Origin::Zero)
        ]
    );
}

#[test]
fn two_data_in_one_file() {
    // D over the whole file, then E overwrites [4096, 6144) at the same offsets: their tags
    // share the magic, but the split is exact.
    let mut content = data_bytes("D", 0, 8192);
    content[4096..6144].copy_from_slice(&data_bytes("E", 4096, 2048));
    assert_eq!(
        classify(&content, 0, &["D", "E"]),
        vec![
            ext(0, 4096, data("D", 0)),
            ext(4096, 6144, data("E", 0)),
            ext(6144, 8192, data("D", 0))
        ]
    );
    // E at an unaligned file offset with its own data offset.
    let mut content = data_bytes("D", 0, 8192);
    content[1000..2024].copy_from_slice(&data_bytes("E", 0, 1024));
    assert_eq!(
        classify(&content, 0, &["D", "E"]),
        vec![
            ext(0, 1000, data("D", 0)),
            ext(1000, 2024, data("E", -1000)),
            ext(2024, 8192, data("D", 0))
        ]
    );
    // A name not asked about is unknown.
    let content = data_bytes("E", 0, 1024);
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![ext(0, 1024, Origin::Unknown)]
    );
}

#[test]
fn unknown_data_over_known_data_splits_at_its_tag() {
    // E (not asked about) over the middle of D at the same offsets: D's run must not take
    // the magic of E's first tag.
    let mut content = data_bytes("D", 0, 8192);
    content[4096..6144].copy_from_slice(&data_bytes("E", 4096, 2048));
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 4096, data("D", 0)),
            ext(4096, 6144, Origin::Unknown),
            ext(6144, 8192, data("D", 0))
        ]
    );
    // A write that legitimately ends inside a tag keeps its last bytes.
    let mut content = data_bytes("D", 0, 4100);
    content.extend_from_slice(&[0; 100]);
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![ext(0, 4100, data("D", 0)), ext(4100, 4200, Origin::Zero)]
    );
    let content = data_bytes("D", 0, 4100);
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![ext(0, 4100, data("D", 0))]
    );
}

#[test]
fn zeros_and_empty() {
    assert_eq!(classify(&[], 0, &["D"]), vec![]);
    assert_eq!(
        classify(&[0; 5000], 0, &["D"]),
        vec![ext(0, 5000, Origin::Zero)]
    );
    assert_eq!(classify(&[0; 3], 10, &[]), vec![ext(10, 13, Origin::Zero)]);
}

#[test]
fn garbage_is_unknown() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
        .collect();
    assert_eq!(
        classify(&garbage, 0, &["D"]),
        vec![ext(0, 4096, Origin::Unknown)]
    );
    // Garbage, then zeros, then D: three extents.
    let mut content = garbage[..1000].to_vec();
    content.extend_from_slice(&[0; 24]);
    content.extend_from_slice(&data_bytes("D", 1024, 1024));
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 1000, Origin::Unknown),
            ext(1000, 1024, Origin::Zero),
            ext(1024, 2048, data("D", 0))
        ]
    );
    // A torn sector: the middle of a D sector replaced by garbage.
    let mut content = data_bytes("D", 0, 1536);
    content[600..700].copy_from_slice(&garbage[..100]);
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 600, data("D", 0)),
            ext(600, 700, Origin::Unknown),
            ext(700, 1536, data("D", 0))
        ]
    );
}

#[test]
fn untagged_partial_write_in_garbage_is_found_by_default_delta() {
    let garbage: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8 | 1)
        .collect();
    let mut content = garbage.clone();
    content[100..400].copy_from_slice(&data_bytes("D", 100, 300));
    assert_eq!(
        classify(&content, 0, &["D"]),
        vec![
            ext(0, 100, Origin::Unknown),
            ext(100, 400, data("D", 0)),
            ext(400, 1024, Origin::Unknown)
        ]
    );
}

/// Every extent is true to its origin, and the extents tile the content.
fn check_sound(content: &[u8], base: u64, names: &[&str]) -> Vec<Extent> {
    let ext = classify(content, base, names);
    let mut at = base;
    for e in &ext {
        assert_eq!(e.start, at, "{ext:?}");
        assert!(e.end > e.start);
        let bytes = &content[(e.start - base) as usize..(e.end - base) as usize];
        match &e.origin {
            Origin::Zero => assert!(bytes.iter().all(|&b| b == 0), "{e}"),
            Origin::Data { name, delta } => {
                let off = (e.start as i64 + delta) as u64;
                assert_eq!(bytes, &data_bytes(name, off, bytes.len())[..], "{e}");
            }
            Origin::Unknown => {}
        }
        at = e.end;
    }
    assert_eq!(at, base + content.len() as u64);
    ext
}

#[test]
fn random_writes_are_classified_soundly() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for round in 0..300 {
        let mut content = vec![0u8; 16384];
        let mut written = 0;
        for _ in 0..6 {
            let name = ["D", "E", "F"][rnd(3) as usize];
            let off = if round % 2 == 0 {
                rnd(32) * 512
            } else {
                rnd(16384)
            };
            let len = (rnd(6000) + 1).min(16384 - off);
            let data_off = if rnd(2) == 0 { off } else { rnd(100_000) };
            content[off as usize..(off + len) as usize].copy_from_slice(&data_bytes(
                name,
                data_off,
                len as usize,
            ));
            written += len;
        }
        let ext = check_sound(&content, 4096, &["D", "E"]);
        assert!(written == 0 || !ext.is_empty());
    }
}

#[test]
fn aligned_writes_are_classified_exactly() {
    // Whole-sector writes at sector-aligned offsets with default data offsets: the extents
    // are exactly the last writer of each sector, merged (F is not asked about: unknown).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for _ in 0..300 {
        let mut content = vec![0u8; 32 * 512];
        let mut owner: Vec<Origin> = vec![Origin::Zero; 32];
        for _ in 0..5 {
            let name = ["D", "E", "F"][rnd(3) as usize];
            let first = rnd(32) as usize;
            let count = 1 + rnd((32 - first) as u64) as usize;
            let (a, b) = (first * 512, (first + count) * 512);
            content[a..b].copy_from_slice(&data_bytes(name, a as u64, b - a));
            for o in &mut owner[first..first + count] {
                *o = match name {
                    "F" => Origin::Unknown,
                    _ => data(name, 0),
                };
            }
        }
        let mut want: Vec<Extent> = Vec::new();
        for (s, o) in owner.into_iter().enumerate() {
            let (start, end) = (s as u64 * 512, s as u64 * 512 + 512);
            match want.last_mut() {
                Some(l) if l.origin == o => l.end = end,
                _ => want.push(Extent {
                    start,
                    end,
                    origin: o,
                }),
            }
        }
        assert_eq!(check_sound(&content, 0, &["D", "E"]), want);
    }
}

#[test]
fn eight_mib_is_fast_enough() {
    let mut content = data_bytes("D", 0, 8 << 20);
    let garbage: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    content[1 << 20..2 << 20].copy_from_slice(&garbage);
    let t = std::time::Instant::now();
    let ext = classify(&content, 0, &["D", "E"]);
    assert_eq!(ext.len(), 3, "{ext:?}");
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
}

#[test]
fn fill_bytes_counts_only_fill() {
    assert_eq!(fill_bytes(0, 32), 0);
    assert_eq!(fill_bytes(0, 512), 480);
    assert_eq!(fill_bytes(30, 10), 8);
    assert_eq!(fill_bytes(500, 600), 12 + 480 + (1100 - 1024 - 32));
}

#[test]
fn display() {
    assert_eq!(ext(0, 8, data("D", 0)).to_string(), "[0..8) D+0");
    assert_eq!(ext(8, 16, data("D", -8)).to_string(), "[8..16) D-8");
    assert_eq!(ext(8, 16, Origin::Zero).to_string(), "[8..16) zero");
    assert_eq!(ext(8, 16, Origin::Unknown).to_string(), "[8..16) unknown");
}
