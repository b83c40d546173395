// aes128: AES-128 encryption of one block (FIPS 197) between two parties. Party 0 holds the
// 16-byte key, party 1 the 16-byte plaintext; both learn the ciphertext, neither learns the
// other's input. A real use: party 0 is a server whose key must never leave it, party 1 a
// client who wants a block encrypted (an oblivious PRF, as in private set intersection or
// password-hardening protocols) without showing it to the server.
//
// Example (FIPS 197, appendix C.1: key 000102...0f, plaintext 00112233...ff, ciphertext
// 69c4e0d86a7b0430d8cdb78070b4c55a; bytes are written in decimal):
//     mpc run programs/aes128.garble.rs --input '0u8..16u8' \
//         --input '[0u8, 17u8, 34u8, 51u8, 68u8, 85u8, 102u8, 119u8, 136u8, 153u8, 170u8, 187u8, 204u8, 221u8, 238u8, 255u8]'
//     [105, 196, 224, 216, 106, 123, 4, 48, 216, 205, 183, 128, 112, 180, 197, 90]
//
// `mpc check programs/aes128.garble.rs --bristol-out aes_128.txt` exports it as a Bristol
// Fashion circuit with the interface of the usual aes_128.txt (input 0: the key, input 1: the
// plaintext, output: the ciphertext, all as hex in the byte order of FIPS 197).
//
// The state is FIPS 197's: byte r + 4c is row r of column c. The S-box is not a table (a
// lookup at a secret index costs hundreds of AND gates) but the Boolean circuit of Boyar and
// Peralta, "A Small Depth-16 Circuit for the AES S-Box" (SEC 2012, eprint 2011/332): inversion
// in GF(2^8) through the tower field GF((2^4)^2), 34 AND gates per byte.

pub fn main(key: [u8; 16], plaintext: [u8; 16]) -> [u8; 16] {
    let round_keys = expand_key(key);
    let mut state = add_round_key(plaintext, round_keys[0]);
    for round in 1usize..10usize {
        state = add_round_key(mix_columns(shift_rows(sub_bytes(state))), round_keys[round]);
    }
    add_round_key(shift_rows(sub_bytes(state)), round_keys[10])
}

// The 11 round keys (FIPS 197, 5.2): each 4-byte word is the word 4 positions back XOR the
// previous word, which for the first word of a round key is first rotated, substituted and
// XORed with the round constant.
fn expand_key(key: [u8; 16]) -> [[u8; 16]; 11] {
    let rcon = [1u8, 2u8, 4u8, 8u8, 16u8, 32u8, 64u8, 128u8, 27u8, 54u8];
    let mut round_keys = [key; 11];
    let mut prev = key;
    for round in 0usize..10usize {
        let mut next = prev;
        next[0] = prev[0] ^ sbox(prev[13]) ^ rcon[round];
        next[1] = prev[1] ^ sbox(prev[14]);
        next[2] = prev[2] ^ sbox(prev[15]);
        next[3] = prev[3] ^ sbox(prev[12]);
        for i in 4usize..16usize {
            next[i] = prev[i] ^ next[i - 4usize];
        }
        round_keys[round + 1usize] = next;
        prev = next;
    }
    round_keys
}

fn add_round_key(state: [u8; 16], round_key: [u8; 16]) -> [u8; 16] {
    let mut out = state;
    for i in 0usize..16usize {
        out[i] = state[i] ^ round_key[i];
    }
    out
}

fn sub_bytes(state: [u8; 16]) -> [u8; 16] {
    let mut out = state;
    for i in 0usize..16usize {
        out[i] = sbox(state[i]);
    }
    out
}

// Row r is rotated left by r positions: out[r][c] = in[r][(c + r) mod 4].
fn shift_rows(state: [u8; 16]) -> [u8; 16] {
    let mut out = state;
    for r in 0usize..4usize {
        for c in 0usize..4usize {
            out[r + 4usize * c] = state[r + 4usize * ((c + r) & 3usize)];
        }
    }
    out
}

// Each column is multiplied by the polynomial 3x^3 + x^2 + x + 2 modulo x^4 + 1 (FIPS 197,
// 5.1.3); only XORs, so no AND gates.
fn mix_columns(state: [u8; 16]) -> [u8; 16] {
    let mut out = state;
    for c in 0usize..4usize {
        let a0 = state[4usize * c];
        let a1 = state[4usize * c + 1usize];
        let a2 = state[4usize * c + 2usize];
        let a3 = state[4usize * c + 3usize];
        out[4usize * c] = xtime(a0) ^ xtime(a1) ^ a1 ^ a2 ^ a3;
        out[4usize * c + 1usize] = a0 ^ xtime(a1) ^ xtime(a2) ^ a2 ^ a3;
        out[4usize * c + 2usize] = a0 ^ a1 ^ xtime(a2) ^ xtime(a3) ^ a3;
        out[4usize * c + 3usize] = xtime(a0) ^ a0 ^ a1 ^ a2 ^ xtime(a3);
    }
    out
}

// Multiplication by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS 197, 4.2.1): a shift,
// and when the top bit falls out, XOR 0x1b (bits 0, 1, 3 and 4), without a branch.
fn xtime(a: u8) -> u8 {
    let top = a >> 7u8;
    (a << 1u8) ^ top ^ (top << 1u8) ^ (top << 3u8) ^ (top << 4u8)
}

// Bit i (0 = least significant) of a byte.
fn bit(x: u8, i: u8) -> bool {
    ((x >> i) & 1u8) == 1u8
}

// The AES S-box (FIPS 197, 5.1.1) as Boyar and Peralta's circuit: a linear layer (T), the
// inversion in GF((2^4)^2) with 34 AND gates (M), and a linear layer with the affine map (L,
// the `!` are its constant 0x63). u0 is the most significant input bit, s0 the most
// significant output bit.
fn sbox(x: u8) -> u8 {
    let u0 = bit(x, 7u8);
    let u1 = bit(x, 6u8);
    let u2 = bit(x, 5u8);
    let u3 = bit(x, 4u8);
    let u4 = bit(x, 3u8);
    let u5 = bit(x, 2u8);
    let u6 = bit(x, 1u8);
    let u7 = bit(x, 0u8);

    let t1 = u0 ^ u3;
    let t2 = u0 ^ u5;
    let t3 = u0 ^ u6;
    let t4 = u3 ^ u5;
    let t5 = u4 ^ u6;
    let t6 = t1 ^ t5;
    let t7 = u1 ^ u2;
    let t8 = u7 ^ t6;
    let t9 = u7 ^ t7;
    let t10 = t6 ^ t7;
    let t11 = u1 ^ u5;
    let t12 = u2 ^ u5;
    let t13 = t3 ^ t4;
    let t14 = t6 ^ t11;
    let t15 = t5 ^ t11;
    let t16 = t5 ^ t12;
    let t17 = t9 ^ t16;
    let t18 = u3 ^ u7;
    let t19 = t7 ^ t18;
    let t20 = t1 ^ t19;
    let t21 = u6 ^ u7;
    let t22 = t7 ^ t21;
    let t23 = t2 ^ t22;
    let t24 = t2 ^ t10;
    let t25 = t20 ^ t17;
    let t26 = t3 ^ t16;
    let t27 = t1 ^ t12;

    let m1 = t13 & t6;
    let m2 = t23 & t8;
    let m3 = t14 ^ m1;
    let m4 = t19 & u7;
    let m5 = m4 ^ m1;
    let m6 = t3 & t16;
    let m7 = t22 & t9;
    let m8 = t26 ^ m6;
    let m9 = t20 & t17;
    let m10 = m9 ^ m6;
    let m11 = t1 & t15;
    let m12 = t4 & t27;
    let m13 = m12 ^ m11;
    let m14 = t2 & t10;
    let m15 = m14 ^ m11;
    let m16 = m3 ^ m2;
    let m17 = m5 ^ t24;
    let m18 = m8 ^ m7;
    let m19 = m10 ^ m15;
    let m20 = m16 ^ m13;
    let m21 = m17 ^ m15;
    let m22 = m18 ^ m13;
    let m23 = m19 ^ t25;
    let m24 = m22 ^ m23;
    let m25 = m22 & m20;
    let m26 = m21 ^ m25;
    let m27 = m20 ^ m21;
    let m28 = m23 ^ m25;
    let m29 = m28 & m27;
    let m30 = m26 & m24;
    let m31 = m20 & m23;
    let m32 = m27 & m31;
    let m33 = m27 ^ m25;
    let m34 = m21 & m22;
    let m35 = m24 & m34;
    let m36 = m24 ^ m25;
    let m37 = m21 ^ m29;
    let m38 = m32 ^ m33;
    let m39 = m23 ^ m30;
    let m40 = m35 ^ m36;
    let m41 = m38 ^ m40;
    let m42 = m37 ^ m39;
    let m43 = m37 ^ m38;
    let m44 = m39 ^ m40;
    let m45 = m42 ^ m41;
    let m46 = m44 & t6;
    let m47 = m40 & t8;
    let m48 = m39 & u7;
    let m49 = m43 & t16;
    let m50 = m38 & t9;
    let m51 = m37 & t17;
    let m52 = m42 & t15;
    let m53 = m45 & t27;
    let m54 = m41 & t10;
    let m55 = m44 & t13;
    let m56 = m40 & t23;
    let m57 = m39 & t19;
    let m58 = m43 & t3;
    let m59 = m38 & t22;
    let m60 = m37 & t20;
    let m61 = m42 & t1;
    let m62 = m45 & t4;
    let m63 = m41 & t2;

    let l0 = m61 ^ m62;
    let l1 = m50 ^ m56;
    let l2 = m46 ^ m48;
    let l3 = m47 ^ m55;
    let l4 = m54 ^ m58;
    let l5 = m49 ^ m61;
    let l6 = m62 ^ l5;
    let l7 = m46 ^ l3;
    let l8 = m51 ^ m59;
    let l9 = m52 ^ m53;
    let l10 = m53 ^ l4;
    let l11 = m60 ^ l2;
    let l12 = m48 ^ m51;
    let l13 = m50 ^ l0;
    let l15 = m55 ^ l1;
    let l16 = m56 ^ l0;
    let l17 = m57 ^ l1;
    let l18 = m58 ^ l8;
    let l19 = m63 ^ l4;
    let l20 = l0 ^ l1;
    let l21 = l1 ^ l7;
    let l22 = l3 ^ l12;
    let l23 = l18 ^ l2;
    let l24 = l15 ^ l9;
    let l25 = l6 ^ l10;
    let l26 = l7 ^ l9;
    let l27 = l8 ^ l10;
    // l11 ^ (m52 ^ m61): grouped so that garble does not rewrite m52 ^ m61, two ANDs with
    // the factor m42 in common, into a third AND gate.
    let l28 = (l11 ^ m52) ^ m61;
    let l29 = l11 ^ l17;

    let s0 = l6 ^ l24;
    let s1 = !(l16 ^ l26);
    let s2 = !(l19 ^ l28);
    let s3 = l6 ^ l21;
    let s4 = l20 ^ l22;
    let s5 = l25 ^ l29;
    let s6 = !(l13 ^ l27);
    let s7 = !(l6 ^ l23);

    ((s0 as u8) << 7u8)
        | ((s1 as u8) << 6u8)
        | ((s2 as u8) << 5u8)
        | ((s3 as u8) << 4u8)
        | ((s4 as u8) << 3u8)
        | ((s5 as u8) << 2u8)
        | ((s6 as u8) << 1u8)
        | (s7 as u8)
}
