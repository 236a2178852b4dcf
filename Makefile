# The two commands of the README.
.PHONY: run test

# The whole system on this machine, on the embedded store.
run:
	cargo run --release

# Every test: installs moto (pinned), starts it, runs the workspace's tests, stops it.
test:
	bash infra/test/run.sh
