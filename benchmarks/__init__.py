"""The benchmarks against torch.nn (bench.py), the facts the Performance page
quotes from their record (report.py), and a profiler (profile_encoder.py); run
them from the repository root as modules: `python -m benchmarks.bench`."""
