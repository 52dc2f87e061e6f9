from stream_cnn.cli import main

main()
