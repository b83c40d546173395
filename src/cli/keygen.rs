//! `mpc keygen FILE`: a participant's long-term identity. Writes the secret key to FILE
//! (mode 0600) and the public key to FILE.pub, and prints the public key alone on stdout,
//! ready for the session's roster (`SEAT PUBKEY`).

use std::path::PathBuf;

use crate::channel::identity::Identity;

use super::Failure;

/// Arguments of `mpc keygen`.
#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (the public key goes to FILE.pub).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace FILE and FILE.pub if they exist (the old key is lost).
    #[arg(long)]
    pub force: bool,
}

/// Creates the key pair and prints the public key.
pub fn run(args: KeygenArgs) -> Result<(), Failure> {
    let identity = Identity::generate();
    let public_path = identity
        .write(&args.file, args.force)
        .map_err(Failure::usage)?;
    println!("{}", identity.public());
    crate::progress::eprint_line(&format!(
        "wrote the secret key to {} and the public key to {}; put the public key in the \
         roster as `SEAT {}` and keep the secret key private",
        args.file.display(),
        public_path.display(),
        identity.public()
    ));
    Ok(())
}
