variable "region" {
  type    = string
  default = "eu-central-1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "enclave"
}

variable "environment" {
  description = "ENCLAVE_ENV of this deployment (production or staging)."
  type        = string
  default     = "production"
  validation {
    condition     = contains(["production", "staging"], var.environment)
    error_message = "environment must be production or staging."
  }
}

variable "availability_zones" {
  type    = list(string)
  default = ["eu-central-1a", "eu-central-1b"]
}

variable "vpc_cidr" {
  type    = string
  default = "10.40.0.0/16"
}

variable "certificate_arn" {
  description = "ACM certificate for the public host name (the ALB terminates TLS)."
  type        = string
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "redis_node_type" {
  type    = string
  default = "cache.t4g.small"
}

variable "redis_auth_token" {
  description = "Redis AUTH token (from your secret store; never commit it)."
  type        = string
  sensitive   = true
}

variable "backup_retention_days" {
  description = "Backups expire after this many days (S3 lifecycle)."
  type        = number
  default     = 90
}

variable "backup_lock_days" {
  description = "Object Lock (compliance mode): backups cannot be deleted before this."
  type        = number
  default     = 30
}
