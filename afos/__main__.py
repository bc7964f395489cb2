from afos.cli import main

main()
