from ambs_verify.cli import main

main()
