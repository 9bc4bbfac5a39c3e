output "alb_dns_name" {
  value = aws_lb.edge.dns_name
}

output "app_target_group_arn" {
  description = "Register the app (gunicorn, port 8000) tasks here."
  value       = aws_lb_target_group.app.arn
}

output "private_subnet_ids" {
  description = "Subnets for the app, worker and backup compute (no route to the internet)."
  value       = aws_subnet.private[*].id
}

output "security_group_ids" {
  description = "Generated from the tier map: attach each to the compute running that service."
  value = {
    gunicorn      = aws_security_group.gunicorn.id
    celery_worker = aws_security_group.celery_worker.id
    celery_beat   = aws_security_group.celery_beat.id
    backup_runner = aws_security_group.backup_runner.id
  }
}

output "postgres_endpoint" {
  value = aws_db_instance.postgres.address
}

output "redis_endpoint" {
  value = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "backup_bucket" {
  value = aws_s3_bucket.backups.id
}
