from jist_edge.cli import main

main()
