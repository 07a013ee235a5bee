"""The ec2 executor: a worker on its own EC2 instance."""
