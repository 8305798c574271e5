from wio.cli import main

main()
