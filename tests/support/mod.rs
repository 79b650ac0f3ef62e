pub mod anvil;
pub mod bin;
pub mod sim;
pub mod world;
