pub mod anvil;
pub mod bin;
