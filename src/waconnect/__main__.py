from waconnect.cli import main

main()
