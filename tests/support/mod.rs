pub mod anvil;
pub mod bin;
pub mod chains;
pub mod relay;
pub mod sim;
pub mod speculos;
pub mod tmux;
pub mod world;
