"""DGCNN reading-comprehension QA for the kexue.fm model zoo."""
