from inspector.cli.commands import main

main()
