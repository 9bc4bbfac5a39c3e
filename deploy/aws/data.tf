# The data tier: PostgreSQL (RDS) and Redis (ElastiCache) in the isolated subnets, each
# behind its own generated security group, encrypted at rest with KMS and in transit.
resource "aws_db_subnet_group" "data" {
  name       = "${var.name}-data"
  subnet_ids = aws_subnet.isolated[*].id
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${var.name}-postgres16"
  family = "postgres16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  identifier                          = "${var.name}-postgres"
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.db_instance_class
  allocated_storage                   = 50
  db_name                             = "enclave"
  username                            = "enclave"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.this["rds"].arn
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.this["rds"].arn
  publicly_accessible                 = false
  db_subnet_group_name                = aws_db_subnet_group.data.name
  vpc_security_group_ids              = [aws_security_group.postgres.id]
  parameter_group_name                = aws_db_parameter_group.postgres.name
  multi_az                            = true
  deletion_protection                 = true
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.this["rds"].arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-postgres-final"
}

resource "aws_elasticache_subnet_group" "data" {
  name       = "${var.name}-data"
  subnet_ids = aws_subnet.isolated[*].id
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id       = "${var.name}-redis"
  description                = "Enclave broker (Celery) and throttling counters"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.data.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this["redis"].arn
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
}
