# Generated from deploy/tiers.toml by `enclave deploy render aws`. Do not edit;
# change the tier map and regenerate (a test fails when this file is stale).

resource "aws_security_group" "nginx" {
  name        = "${var.name}-nginx"
  description = "edge tier: nginx (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "edge", Service = "nginx" }
}

resource "aws_security_group" "gunicorn" {
  # checkov:skip=CKV2_AWS_5:attached by the compute layer (output security_group_ids)
  name        = "${var.name}-gunicorn"
  description = "app tier: gunicorn (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "app", Service = "gunicorn" }
}

resource "aws_security_group" "celery_worker" {
  # checkov:skip=CKV2_AWS_5:attached by the compute layer (output security_group_ids)
  name        = "${var.name}-celery-worker"
  description = "worker tier: celery-worker (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "worker", Service = "celery-worker" }
}

resource "aws_security_group" "celery_beat" {
  # checkov:skip=CKV2_AWS_5:attached by the compute layer (output security_group_ids)
  name        = "${var.name}-celery-beat"
  description = "worker tier: celery-beat (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "worker", Service = "celery-beat" }
}

resource "aws_security_group" "backup_runner" {
  # checkov:skip=CKV2_AWS_5:attached by the compute layer (output security_group_ids)
  name        = "${var.name}-backup-runner"
  description = "backup tier: backup-runner (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "backup", Service = "backup-runner" }
}

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "data tier: postgres (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "data", Service = "postgres" }
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "data tier: redis (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = { Tier = "data", Service = "redis" }
}

resource "aws_vpc_security_group_ingress_rule" "internet_to_nginx_443" {
  security_group_id = aws_security_group.nginx.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "internet -> nginx:443"
}

resource "aws_vpc_security_group_ingress_rule" "internet_to_nginx_80" {
  # checkov:skip=CKV_AWS_260:port 80 on the ALB only answers with a redirect to HTTPS
  security_group_id = aws_security_group.nginx.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  description       = "internet -> nginx:80"
}

resource "aws_vpc_security_group_ingress_rule" "nginx_to_gunicorn_8000" {
  security_group_id            = aws_security_group.gunicorn.id
  referenced_security_group_id = aws_security_group.nginx.id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
  description                  = "nginx -> gunicorn:8000"
}

resource "aws_vpc_security_group_egress_rule" "nginx_to_gunicorn_8000" {
  security_group_id            = aws_security_group.nginx.id
  referenced_security_group_id = aws_security_group.gunicorn.id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
  description                  = "nginx -> gunicorn:8000"
}

resource "aws_vpc_security_group_ingress_rule" "gunicorn_to_postgres_5432" {
  security_group_id            = aws_security_group.postgres.id
  referenced_security_group_id = aws_security_group.gunicorn.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "gunicorn -> postgres:5432"
}

resource "aws_vpc_security_group_egress_rule" "gunicorn_to_postgres_5432" {
  security_group_id            = aws_security_group.gunicorn.id
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "gunicorn -> postgres:5432"
}

resource "aws_vpc_security_group_ingress_rule" "gunicorn_to_redis_6379" {
  security_group_id            = aws_security_group.redis.id
  referenced_security_group_id = aws_security_group.gunicorn.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "gunicorn -> redis:6379"
}

resource "aws_vpc_security_group_egress_rule" "gunicorn_to_redis_6379" {
  security_group_id            = aws_security_group.gunicorn.id
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "gunicorn -> redis:6379"
}

resource "aws_vpc_security_group_ingress_rule" "celery_worker_to_postgres_5432" {
  security_group_id            = aws_security_group.postgres.id
  referenced_security_group_id = aws_security_group.celery_worker.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "celery-worker -> postgres:5432"
}

resource "aws_vpc_security_group_egress_rule" "celery_worker_to_postgres_5432" {
  security_group_id            = aws_security_group.celery_worker.id
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "celery-worker -> postgres:5432"
}

resource "aws_vpc_security_group_ingress_rule" "celery_worker_to_redis_6379" {
  security_group_id            = aws_security_group.redis.id
  referenced_security_group_id = aws_security_group.celery_worker.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "celery-worker -> redis:6379"
}

resource "aws_vpc_security_group_egress_rule" "celery_worker_to_redis_6379" {
  security_group_id            = aws_security_group.celery_worker.id
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "celery-worker -> redis:6379"
}

resource "aws_vpc_security_group_ingress_rule" "celery_beat_to_redis_6379" {
  security_group_id            = aws_security_group.redis.id
  referenced_security_group_id = aws_security_group.celery_beat.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "celery-beat -> redis:6379"
}

resource "aws_vpc_security_group_egress_rule" "celery_beat_to_redis_6379" {
  security_group_id            = aws_security_group.celery_beat.id
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "celery-beat -> redis:6379"
}

resource "aws_vpc_security_group_ingress_rule" "celery_beat_to_postgres_5432" {
  security_group_id            = aws_security_group.postgres.id
  referenced_security_group_id = aws_security_group.celery_beat.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "celery-beat -> postgres:5432"
}

resource "aws_vpc_security_group_egress_rule" "celery_beat_to_postgres_5432" {
  security_group_id            = aws_security_group.celery_beat.id
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "celery-beat -> postgres:5432"
}

resource "aws_vpc_security_group_ingress_rule" "backup_runner_to_postgres_5432" {
  security_group_id            = aws_security_group.postgres.id
  referenced_security_group_id = aws_security_group.backup_runner.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "backup-runner -> postgres:5432"
}

resource "aws_vpc_security_group_egress_rule" "backup_runner_to_postgres_5432" {
  security_group_id            = aws_security_group.backup_runner.id
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "backup-runner -> postgres:5432"
}
