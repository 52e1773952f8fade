from aoeboot.cli import main

main()
