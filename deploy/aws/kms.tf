# One customer-managed key per purpose, each with yearly automatic rotation.
locals {
  kms_purposes = ["rds", "redis", "backups", "logs"]
}

data "aws_iam_policy_document" "kms" {
  # In a key policy "*" means "this key"; the account root statement is AWS's default.
  # checkov:skip=CKV_AWS_111:key policy: the resource is the key itself
  # checkov:skip=CKV_AWS_356:key policy: the resource is the key itself
  # checkov:skip=CKV_AWS_109:key policy: the account administers its own key through IAM
  # The account administers its keys through IAM; services are granted use by their roles.
  statement {
    sid       = "AccountAdministersKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsUseLogsKey"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  for_each                = toset(local.kms_purposes)
  description             = "${var.name} ${each.key}"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  for_each      = aws_kms_key.this
  name          = "alias/${var.name}-${each.key}"
  target_key_id = each.value.key_id
}
