//! The committed header must be exactly what cbindgen generates from the current source,
//! and every exported function must appear in it.

#[test]
fn committed_header_is_fresh() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/daemonkit.h"))
            .expect("include/daemonkit.h is missing");
    if committed != daemonkit::GENERATED_HEADER {
        panic!(
            "include/daemonkit.h is stale: regenerate it with `DAEMONKIT_UPDATE_HEADER=1 cargo build` \
             and commit it"
        );
    }
}

#[test]
fn every_capi_function_is_in_the_header() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/capi");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in src.lines() {
            let l = line.trim_start();
            if let Some(rest) = l
                .strip_prefix("pub unsafe extern \"C\" fn ")
                .or_else(|| l.strip_prefix("pub extern \"C\" fn "))
            {
                names.push(rest.split('(').next().unwrap().to_string());
            }
        }
    }
    assert!(names.len() > 40, "found only {} functions", names.len());
    for n in &names {
        assert!(n.starts_with("dk_"), "{n} lacks the dk_ prefix");
        assert!(
            daemonkit::GENERATED_HEADER.contains(&format!(" {n}("))
                || daemonkit::GENERATED_HEADER.contains(&format!("*{n}(")),
            "{n} missing from the header"
        );
    }
}
