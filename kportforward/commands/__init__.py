"""One module per subcommand, each exposing ``main(args) -> int``; imported only when chosen."""
