"""The Hydra configs of seem-vos, shipped inside the package as ``vos.configs``."""
