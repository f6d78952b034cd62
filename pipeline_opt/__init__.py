"""pipeline_opt: fast, lean and safe Spark/Delta pipelines that feed PyTorch training."""
