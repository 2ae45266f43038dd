from cognitionos.cli import main

main()
