//! Vectors from golang/mod `sumdb/note/note_test.go` and `sumdb/tlog/note_test.go`,
//! real sum.golang.org tree heads, and cmd/go's published test key.

use super::*;

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const LOCAL_VKEY: &str =
    "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6";
const LOCAL_SKEY: &str =
    "PRIVATE+KEY+localhost.localdev/sumdb+00000c67+AXu6+oaVaOYuQOFrf1V59JK1owcFlJcHwwXHDfDGxSPk";

const TREE_6476701: &str = "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n\
     — sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n";
const TREE_1514086: &str = "go.sum database tree\n1514086\nkn9DgqDhXzoZMM8828SQsbuovr/WRn7QfFd5Qe1rpwA=\n\n\
     — sum.golang.org Az3grunuggF5mKymPJeK/l9Pq71lOg/rAVkQVCzGkWRJcnS3ZFunzveHr9PAH8LFsuhpcCWzGDNrn9FFDyXm/66tBg8=\n";

fn peter() -> Verifier {
    Verifier::parse(PETER_VKEY).expect("PeterNeumann key parses")
}

fn enoch() -> Verifier {
    Verifier::parse(ENOCH_VKEY).expect("EnochRoot key parses")
}

fn sum_golang_org() -> Verifier {
    Verifier::parse(SUM_GOLANG_ORG).expect("sum.golang.org key parses")
}

fn sig(line: &str) -> Signature {
    let (name, b64) = line
        .trim_start_matches(SIG_PREFIX)
        .trim_end()
        .split_once(' ')
        .expect("signature line");
    let hash = GO_BASE64.decode(b64).expect("base64");
    Signature {
        name: name.to_owned(),
        key_hash: u32::from_be_bytes(hash[..4].try_into().expect("4 bytes")),
        base64: b64.to_owned(),
    }
}

fn open_str(msg: &str, verifiers: &[Verifier]) -> Result<Note, NoteError> {
    open(msg.as_bytes(), verifiers)
}

/// Every proper substring and every single-byte increment of `key`.
fn manglings(key: &str) -> Vec<String> {
    let b = key.as_bytes();
    let mut out = Vec::new();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                out.push(String::from_utf8(b[i..j].to_vec()).expect("ASCII key"));
            }
        }
    }
    for i in 0..b.len() {
        let mut changed = b.to_vec();
        changed[i] += 1;
        out.push(String::from_utf8(changed).expect("ASCII key"));
    }
    out
}

#[test]
fn published_verifier_keys_parse_with_their_names_and_hashes() {
    for (vkey, name, hash) in [
        (PETER_VKEY, "PeterNeumann", 0xc74f20a3),
        (ENOCH_VKEY, "EnochRoot", 0xaf0cfe78),
        (SUM_GOLANG_ORG, "sum.golang.org", 0x033de0ae),
        (LOCAL_VKEY, "localhost.localdev/sumdb", 0x00000c67),
    ] {
        let v = Verifier::parse(vkey).expect(vkey);
        assert_eq!((v.name(), v.key_hash()), (name, hash), "{vkey}");
    }
}

#[test]
fn verifier_rejects_every_truncation_and_byte_change() {
    for bad in manglings(PETER_VKEY) {
        assert!(Verifier::parse(&bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn verifier_rejects_wrong_length_and_unknown_algorithm_even_with_matching_hash() {
    let long = "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==";
    assert_eq!(
        Verifier::parse(long),
        Err(NoteError::InvalidVerifierKey(KeyProblem::Malformed))
    );
    let alg = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert_eq!(
        Verifier::parse(alg),
        Err(NoteError::InvalidVerifierKey(KeyProblem::UnknownAlgorithm))
    );
    let wrong_hash = "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let err = Verifier::parse(wrong_hash).expect_err("hash mismatch");
    assert_eq!(err.to_string(), "invalid verifier key: hash mismatch");
}

#[test]
fn verifier_key_hash_may_be_upper_case_hex_as_in_go() {
    let upper = "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert_eq!(Verifier::parse(upper), Ok(peter()));
}

#[test]
fn signer_parses_and_rejects_every_truncation_and_byte_change() {
    let s = Signer::parse(PETER_SKEY).expect("PeterNeumann signer parses");
    assert_eq!((s.name(), s.key_hash()), ("PeterNeumann", 0xc74f20a3));
    for bad in manglings(PETER_SKEY) {
        assert!(Signer::parse(&bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn signing_is_byte_exact_with_go() {
    let signer = Signer::parse(PETER_SKEY).expect("signer");
    let want = format!("{TEXT}\n{PETER_SIG}");
    assert_eq!(signer.sign(TEXT), Ok(want));
}

#[test]
fn signer_from_zero_seed_is_go_examples_enoch_root() {
    let (signer, vkey) = Signer::generate("EnochRoot", [0; 32]).expect("valid name");
    assert_eq!(vkey, ENOCH_VKEY);
    assert_eq!(signer.sign(TEXT), Ok(format!("{TEXT}\n{ENOCH_SIG}")));
}

#[test]
fn generate_rejects_names_that_would_break_keys() {
    for name in ["", "a+b", "a b", "a\u{3000}b", "tab\t"] {
        assert_eq!(
            Signer::generate(name, [7; 32]).map(|_| ()),
            Err(NoteError::InvalidName(name.to_owned()))
        );
    }
}

#[test]
fn sign_rejects_text_open_would_refuse() {
    let signer = Signer::parse(PETER_SKEY).expect("signer");
    for text in ["", "abc", "a\rb\n", "tab\there\n"] {
        assert_eq!(signer.sign(text), Err(NoteError::MalformedNote), "{text:?}");
    }
}

#[test]
fn cmd_go_test_key_round_trips() {
    let signer = Signer::parse(LOCAL_SKEY).expect("signer");
    let verifier = Verifier::parse(LOCAL_VKEY).expect("verifier");
    assert_eq!(signer.key_hash(), verifier.key_hash());
    let tree = TreeHead {
        size: 3,
        hash: [0xab; 32],
    };
    let msg = signer.sign(&tree.format()).expect("sign");
    let note = open_str(&msg, std::slice::from_ref(&verifier)).expect("open");
    assert_eq!(TreeHead::parse_note_text(&note.text), Ok(tree));
    assert_eq!(note.verified.len(), 1);
    assert_eq!(note.verified[0].name, "localhost.localdev/sumdb");
}

#[test]
fn open_keeps_signatures_from_unknown_keys_unverified() {
    let note = open_str(&format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}"), &[peter()]).expect("open");
    assert_eq!(note.text, TEXT);
    assert_eq!(note.verified, vec![sig(PETER_SIG)]);
    assert_eq!(note.unverified, vec![sig(ENOCH_SIG)]);
}

#[test]
fn open_verifies_every_known_signer() {
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let note = open_str(&msg, &[peter(), enoch()]).expect("open");
    assert_eq!(note.verified, vec![sig(PETER_SIG), sig(ENOCH_SIG)]);
    assert!(note.unverified.is_empty());
}

#[test]
fn open_without_a_trusted_signature_fails() {
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert!(matches!(
        open_str(&msg, &[]),
        Err(NoteError::Unverified { .. })
    ));
    let err = open_str(&msg, &[sum_golang_org()]).expect_err("unverified");
    assert_eq!(
        err.to_string(),
        "note has no verifiable signature from sum.golang.org"
    );
}

#[test]
fn open_refuses_ambiguous_verifiers_only_when_they_are_needed() {
    let list = [enoch(), peter(), enoch()];
    assert_eq!(
        open_str(&format!("{TEXT}\n{ENOCH_SIG}"), &list),
        Err(NoteError::AmbiguousKey {
            name: "EnochRoot".to_owned(),
            key_hash: 0xaf0cfe78
        })
    );
    assert!(open_str(&format!("{TEXT}\n{PETER_SIG}"), &list).is_ok());
}

#[test]
fn open_refuses_more_than_100_signatures() {
    let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(open_str(&msg, &[peter()]), Err(NoteError::MalformedNote));
    assert_eq!(open_str(&msg, &[]), Err(NoteError::MalformedNote));
    let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
    assert!(open_str(&msg, &[peter()]).is_ok());
}

#[test]
fn open_fails_on_a_bad_signature_from_a_trusted_key() {
    let corrupt = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let err = open_str(&format!("{TEXT}\n{corrupt}"), &[peter()]).expect_err("bad sig");
    assert_eq!(
        err,
        NoteError::BadSignature {
            name: "PeterNeumann".to_owned(),
            key_hash: 0xc74f20a3
        }
    );
    assert_eq!(err.to_string(), "bad signature from PeterNeumann+c74f20a3");
    // Five bytes is well-formed (key hash and one signature byte) but can
    // never verify.
    let short = open_str(&format!("{TEXT}\n— PeterNeumann x08go/Y=\n"), &[peter()]);
    assert!(matches!(short, Err(NoteError::BadSignature { .. })));
}

#[test]
fn open_drops_repeated_signatures() {
    let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let msg = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}");
    let note = open_str(&msg, &[peter()]).expect("open");
    assert_eq!(note.verified, vec![sig(PETER_SIG)]);
    assert_eq!(note.unverified, vec![sig(ENOCH_SIG), sig(&enoch_abcd)]);
}

#[test]
fn open_refuses_malformed_messages() {
    let peter_no_newline = &PETER_SIG[..PETER_SIG.len() - 1];
    let mut bad: Vec<Vec<u8>> = [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{peter_no_newline}"),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        // Beyond Go's list: a missing or empty base64, too few bytes, a
        // hyphen for the em dash, a carriage return.
        format!("{TEXT}\n— PeterNeumann\n"),
        format!("{TEXT}\n— PeterNeumann \n"),
        format!("{TEXT}\n— PeterNeumann x08gow==\n"),
        format!("{TEXT}\n{}", PETER_SIG.replacen('—', "-", 1)),
        format!("{TEXT}\n{}", PETER_SIG.replacen('\n', "\r\n", 1)),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    bad.push([b"\xff", format!("{TEXT}\n{PETER_SIG}").as_bytes()].concat());
    for msg in bad {
        assert_eq!(
            open(&msg, &[peter()]),
            Err(NoteError::MalformedNote),
            "{:?}",
            String::from_utf8_lossy(&msg)
        );
    }
}

#[test]
fn open_splits_at_the_last_blank_line() {
    let text = "para one\n\npara two\n";
    let signer = Signer::parse(PETER_SKEY).expect("signer");
    let note = open_str(&signer.sign(text).expect("sign"), &[peter()]).expect("open");
    assert_eq!(note.text, text);
}

#[test]
fn open_ignores_base64_padding_bits_as_go_does() {
    // The final `M` of Peter's signature carries two unused bits; `N` differs
    // only there and decodes to the same bytes.
    let tweaked = PETER_SIG.replace("nAM=", "nAN=");
    let note = open_str(&format!("{TEXT}\n{tweaked}"), &[peter()]).expect("open");
    assert_eq!(note.verified.len(), 1);
}

#[test]
fn real_sum_golang_org_tree_heads_verify() {
    for (msg, size, root) in [
        (
            TREE_6476701,
            6476701,
            "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=",
        ),
        (
            TREE_1514086,
            1514086,
            "kn9DgqDhXzoZMM8828SQsbuovr/WRn7QfFd5Qe1rpwA=",
        ),
    ] {
        let note = open_str(msg, &[sum_golang_org()]).expect("real tree head opens");
        let tree = TreeHead::parse_note_text(&note.text).expect("tree text");
        assert_eq!(tree.size, size);
        assert_eq!(STANDARD.encode(tree.hash), root);
        assert_eq!(tree.format(), note.text);
    }
}

#[test]
fn altered_sum_golang_org_tree_heads_fail() {
    let key = [sum_golang_org()];
    let sig_at = TREE_6476701.find("Az3gr").expect("signature");
    let mut altered = vec![
        TREE_6476701.replace("6476701", "6476702"),
        TREE_6476701.replace("mb8QLQ", "mb8QLR"),
        TREE_6476701.replace("— sum.golang.org", "— sum.golang.com"),
    ];
    for offset in [10, 40, 80] {
        let mut bytes = TREE_6476701.as_bytes().to_vec();
        let i = sig_at + offset;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        altered.push(String::from_utf8(bytes).expect("ASCII"));
    }
    for msg in altered {
        assert!(open_str(&msg, &key).is_err(), "{msg:?} was accepted");
    }
    assert!(matches!(
        open_str(&TREE_1514086.replace("1514086", "1514085"), &key),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn tree_head_format_matches_go_golden() {
    let mut leaf = vec![0u8];
    leaf.extend_from_slice(b"hello world");
    let tree = TreeHead {
        size: 123456789012,
        hash: Sha256::digest(&leaf).into(),
    };
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    assert_eq!(tree.format(), golden);
    assert_eq!(TreeHead::parse_note_text(golden), Ok(tree));
    for extra in ["JOE", "JOE\n", &"JOE\n".repeat(1000)] {
        assert_eq!(
            TreeHead::parse_note_text(&format!("{golden}{extra}")),
            Ok(tree)
        );
    }
}

#[test]
fn tree_head_parse_refuses_malformed_text() {
    let hash = "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=";
    let tree = |n: &str, h: &str| format!("go.sum database tree\n{n}\n{h}\n");
    for bad in [
        format!("not-{}", tree("1", hash)),
        tree("0xabcdef", hash),
        tree("0123", hash),
        tree("+5", hash),
        tree("-1", hash),
        tree("", hash),
        tree("9223372036854775808", hash),
        tree("1", "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG="),
        tree("1", "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40Hmuw"),
        tree("1", &STANDARD.encode([0u8; 31])),
        tree("1", hash).trim_end().to_owned(),
        format!("{}{}", tree("1", hash), "x".repeat(MAX_TREE_TEXT)),
    ] {
        assert_eq!(
            TreeHead::parse_note_text(&bad),
            Err(NoteError::MalformedTree),
            "{bad:?}"
        );
    }
    assert_eq!(
        TreeHead::parse_note_text(&tree("0", hash)).map(|t| t.size),
        Ok(0)
    );
    assert_eq!(
        TreeHead::parse_note_text(&tree("9223372036854775807", hash)).map(|t| t.size),
        Ok(i64::MAX as u64)
    );
}

#[test]
fn known_sumdb_names_map_to_the_built_in_key() {
    let org = known_sumdb("sum.golang.org").expect("sum.golang.org");
    assert_eq!(
        (org.name, org.key, org.url),
        ("sum.golang.org", SUM_GOLANG_ORG, "https://sum.golang.org")
    );
    let cn = known_sumdb("sum.golang.google.cn").expect("sum.golang.google.cn");
    assert_eq!(
        (cn.name, cn.key, cn.url),
        (
            "sum.golang.org",
            SUM_GOLANG_ORG,
            "https://sum.golang.google.cn"
        )
    );
    assert_eq!(known_sumdb("sum.golang.org+033de0ae"), None);
    assert_eq!(known_sumdb("example.com"), None);
    assert_eq!(sum_golang_org().name(), org.name);
}

#[test]
fn verifier_rejects_a_key_that_is_not_a_curve_point() {
    let point = (0..=u8::MAX)
        .map(|b| [b; 32])
        .find(|p| VerifyingKey::from_bytes(p).is_err())
        .expect("some byte pattern is not a point");
    let mut encoded = vec![ALG_ED25519];
    encoded.extend_from_slice(&point);
    let vkey = format!(
        "x+{:08x}+{}",
        key_hash("x", &encoded),
        STANDARD.encode(&encoded)
    );
    assert_eq!(
        Verifier::parse(&vkey),
        Err(NoteError::InvalidVerifierKey(KeyProblem::NotEd25519))
    );
}
