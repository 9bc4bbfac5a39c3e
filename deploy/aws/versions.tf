# Enclave on AWS: the tiers of deploy/tiers.toml (docs/deployment.md).
# Security groups are generated (security_groups.tf); everything else is written by hand.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Application = "enclave", Environment = var.environment }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
